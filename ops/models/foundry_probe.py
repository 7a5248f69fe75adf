"""``python -m ops.models.foundry_probe DATA_DIR LOGS_DIR``: load Foundry Local, print what it has as JSON.

Doctor loads the runtime in a child process, not in its own: the SDK's manager is a
per-process singleton bound to the first cache it was given, a native runtime that hangs or
crashes must not take doctor with it, and a child can be killed when it outlives its timeout.
The child leaves without shutting the runtime down: it loaded nothing and has nothing to save, and
the native shutdown spends about a second on a telemetry lookup (longer than everything else here).
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path


def probe(data_dir: Path, logs_dir: Path) -> dict:
    """Initialise the runtime on ``data_dir`` and list its local (bring-your-own) registrations."""
    from ops.errors import OpsError
    from ops.models.foundry import FoundryProvider

    started = time.monotonic()
    runtime = FoundryProvider(data_dir, logs_dir, web_url=None)
    try:
        runtime.start()
    except OpsError as exc:
        return {"ok": False, "error": exc.message, "hint": exc.hint}
    from foundry_local_sdk import CatalogType

    seconds = time.monotonic() - started
    registered = [
        {"id": m.id, "path": m.get_path()}
        for m in runtime.manager.get_catalog(CatalogType.LOCAL).list_models()
    ]
    return {
        "ok": True,
        "seconds": round(seconds, 3),
        "version": metadata.version("foundry-local-sdk"),
        "registered": registered,
    }


if __name__ == "__main__":
    print(json.dumps(probe(Path(sys.argv[1]), Path(sys.argv[2]))), flush=True)
    os._exit(0)  # skip the runtime's shutdown (and the SDK's atexit hook that runs it): see above
