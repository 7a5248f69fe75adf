"""The gateway: the one OpenAI-compatible front door every client of a stack talks to.

It adds what Foundry Local's own web service lacks for containers: a bearer key, alias and
path mapping, a default ``max_tokens``, size limits, OpenAI-shaped errors and a pinned port
on chosen addresses. Streams are passed through as they arrive, never buffered.
"""

from ops.gateway.app import create_app
from ops.gateway.table import ModelState, ModelTable, Route

__all__ = ["ModelState", "ModelTable", "Route", "create_app"]
