"""ops: bring up a private, on-device AI workshop with one command.

The library lives in ``ops``; only ``ops.cli`` imports typer or rich.
"""

__version__ = "0.1.0"
