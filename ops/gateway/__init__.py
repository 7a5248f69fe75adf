"""The gateway: the one OpenAI-compatible front door every client of a stack talks to.

It adds what Foundry Local's own web service lacks for containers: a bearer key, alias and
path mapping, a default ``max_tokens``, size limits, OpenAI-shaped errors and a pinned port
on chosen addresses. Streams are passed through as they arrive, never buffered.

The server itself is ``ops.gateway.app.create_app``; this package's root exports only the model
table, so code that needs a ``Route`` (the providers, doctor's runtime probe) does not import
starlette and the routing rules.
"""

from ops.gateway.table import ModelState, ModelTable, Route

__all__ = ["ModelState", "ModelTable", "Route"]
