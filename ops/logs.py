"""Logging set-up for long-running parts (the model host): timestamps, and secrets masked."""

from __future__ import annotations

import logging

from ops.secrets import redact


class RedactingFilter(logging.Filter):
    """Mask every known secret in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure(level: int = logging.INFO) -> None:
    """Log to stderr (the host log when run in the background) with secrets masked."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
