"""The classroom's parts of a profile: who takes part, how the gateway shares the models, what the room reaches.

``participants:`` names the people of a workshop (a list, or a count that makes ``p01``... ``p30``);
each gets an Open WebUI account, a Chainlit sign-in and a gateway key of their own.
``gateway.sharing:`` is how the gateway shares each model among the callers it knows apart (a
participant, an Open WebUI user, a service, the stack's admin key). ``expose:`` publishes the web
apps and the gateway on one named LAN address, with TLS from the stack's own CA.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: A participant's name: it becomes a user name, an e-mail's local part and a secret's suffix.
PARTICIPANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
NAME_HINT = 'lower-case letters, digits, "-" and "_", starting with a letter, at most 32'


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ParticipantsSpec(_Strict):
    """The workshop's participants: ``names: [ann, bob]`` or ``count: 30`` (``p01``..``p30``)."""

    names: tuple[str, ...] | None = Field(default=None, description="the participants' names")
    count: int | None = Field(
        default=None, ge=1, le=500, description="this many participants, named PREFIX01, PREFIX02..."
    )
    prefix: str = Field(default="p", description="the names `count:` makes start with this")
    tokens_per_hour: int | None = Field(
        default=None,
        gt=0,
        description="tokens (prompt and answer) each participant may use in any hour; one more gets 429",
    )

    @field_validator("names")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        for name in value:
            if not PARTICIPANT_NAME.match(name):
                raise ValueError(f'"{name}" is not a valid participant name ({NAME_HINT})')
        seen = set()
        for name in value:
            if name in seen:
                raise ValueError(f'participant "{name}" is listed twice')
            seen.add(name)
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9_-]{0,27}$", value):
            raise ValueError(f'"{value}" is not a valid prefix ({NAME_HINT}, at most 28)')
        return value

    @model_validator(mode="after")
    def _one_way(self) -> ParticipantsSpec:
        if (self.names is None) == (self.count is None):
            raise ValueError("give either `names:` (a list) or `count:` (a number), not both or neither")
        return self

    @property
    def roster(self) -> tuple[str, ...]:
        """Every participant's name, in order."""
        if self.names is not None:
            return self.names
        assert self.count is not None
        width = max(2, len(str(self.count)))
        return tuple(f"{self.prefix}{i:0{width}d}" for i in range(1, self.count + 1))


class SharingSpec(_Strict):
    """How the gateway shares each model among its callers."""

    policy: Literal["fair", "fifo"] = Field(
        default="fair",
        description="`fair`: waiting requests are served round robin across callers; `fifo`: in arrival order",
    )
    per_caller: int = Field(
        default=2, ge=1, le=1000, description="requests of one caller a model runs at once; more wait"
    )
    slots: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="requests a model runs at once over all callers; default: what its server runs at once "
        "(the batching engine: lanes x max_batch), 8 for other servers",
    )
    queue: int = Field(
        default=256,
        ge=0,
        le=100_000,
        description="requests waiting over all callers; one more is answered 429 with Retry-After",
    )


class ExposeSpec(_Strict):
    """Publish the web apps and the gateway to the room on one LAN address, over TLS."""

    address: str = Field(description="an IP address of this machine on the room's network, e.g. 192.168.1.20")
    gateway: bool = Field(default=True, description="publish the gateway too (participants' own keys)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f'"{value}" is not an IP address (name the LAN address, e.g. 192.168.1.20)'
            ) from None
        if address.is_unspecified:
            raise ValueError(
                f'"{value}" would listen on every network: name the one LAN address the room uses '
                "(`ip -brief address` lists them)"
            )
        if address.is_loopback:
            raise ValueError(f'"{value}" is loopback, which the room cannot reach: name the LAN address')
        return value


class PriceSpec(_Strict):
    """What a priced (cloud) model costs, so ``ops usage`` can say what a workshop spent."""

    input: float = Field(ge=0, description="per million prompt tokens")
    output: float = Field(ge=0, description="per million answer tokens")
    currency: str = Field(default="USD", min_length=1, max_length=8)
