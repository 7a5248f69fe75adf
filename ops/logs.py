"""Logging set-up for long-running parts (the model host): timestamps, and secrets masked."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from ops.secrets import redact


class RedactingFilter(logging.Filter):
    """Mask every known secret in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    message = record.getMessage()
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        # Formatters reuse exc_text when it is set: the traceback is then written masked too.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))


def _redacting_factory(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _redact_record(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    return factory


def configure(level: int = logging.INFO) -> None:
    """Log to stderr (the host log when run in the background) with secrets masked.

    Masking happens where records are made, not only in this handler: uvicorn (and any library
    that sets up logging after us) gives its loggers their own handlers, which a filter on the
    root's handler never sees.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    current = logging.getLogRecordFactory()
    if not getattr(current, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))
