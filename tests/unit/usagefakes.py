"""One usage record for the metering tests, a participant's by default."""

from __future__ import annotations

from ops.metering import Usage

NOW = 1_800_000_000.0


def usage(caller="participant:ann", model="tiny", status=200, at=NOW, prompt=10, completion=5, ttft=0.1):
    """A finished request of ``caller`` (``participant:NAME`` names the participant too)."""
    participant = caller.split(":", 1)[1] if caller.startswith("participant:") else None
    return Usage(
        at=at,
        caller=caller,
        participant=participant,
        model=model,
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        ttft=ttft,
        duration=1.0,
    )
