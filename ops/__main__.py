"""``python -m ops`` is the ``ops`` command (the model host is started this way)."""

from ops.cli import main

main()
