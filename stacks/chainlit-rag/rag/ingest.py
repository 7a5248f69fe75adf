"""``python -m rag.ingest``: bring the index in line with the documents folder, and say what changed.

``ops rag ingest`` runs this inside the app's container after copying files into the documents
volume; the running app notices the new index on its next question. ``--json`` prints the report
as one JSON object (the contract ``ops`` reads).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from rag.library import Library
from rag.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Sync once; print the report."""
    parser = argparse.ArgumentParser(prog="python -m rag.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    # Log lines go to stderr, so stdout holds nothing but the report.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Samples are seeded by the app's first start only: a user who emptied the folder meant it.
    report = Library(Settings.from_env()).sync(seed=False)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} deleted, "
        f"{report.unchanged} unchanged, {len(report.skipped)} skipped: "
        f"{report.documents} documents, {report.chunks} chunks ({report.embedder or 'BM25 only'})"
    )
    for skipped in report.skipped:
        print(f"  skipped {skipped.path}: {skipped.reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
