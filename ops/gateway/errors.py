"""The gateway's own refusals, answered to the client in OpenAI's JSON error shape."""

from __future__ import annotations


class GatewayError(Exception):
    """An error answered to the client in OpenAI's JSON shape (``headers``: e.g. ``Retry-After``)."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.headers = headers or {}


def too_many(message: str, code: str, retry_after: float) -> GatewayError:
    """429 with ``Retry-After`` in whole seconds (at least 1)."""
    seconds = max(1, int(retry_after + 0.999))
    return GatewayError(
        429, message, kind="rate_limit_error", code=code, headers={"retry-after": str(seconds)}
    )
