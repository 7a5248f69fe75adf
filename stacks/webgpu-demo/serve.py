"""Serve the WebGPU demo's folder over http, with the headers the browser needs.

The container's CMD and the host (tests, benchmark, a person without Docker) run the same file::

    python stacks/webgpu-demo/serve.py --port 8502 --root DIR

``DIR`` is an assembled site (``assemble.py`` adds onnxruntime-web to ``site/``). Standard library
only: the image needs nothing but Debian's python3. What it adds to ``http.server``:

- MIME types the browser insists on: ``.mjs`` as ``text/javascript`` (module scripts are refused
  otherwise) and ``.wasm`` as ``application/wasm`` (streaming compilation needs it);
- ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``
  on every answer, so the page is cross-origin isolated and onnxruntime's wasm backend may use
  SharedArrayBuffer threads;
- ``GET /health`` answering 200 with ``{"status":"ok"}`` for probes;
- no directory listings, and a clean exit on SIGTERM (as PID 1 in a container, Python would
  otherwise ignore it and ``docker stop`` would wait 10 s before killing it).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HEALTH_PATH = "/health"

EXTRA_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".json": "application/json",
}

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    # Same-origin resources pass COEP anyway; this also stops other sites embedding ours.
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    # Revalidate every time: a rebuilt model or runtime must never be mixed with a cached one.
    "Cache-Control": "no-cache",
}


class DemoHandler(SimpleHTTPRequestHandler):
    """Static files from ``directory`` with the demo's MIME types and headers."""

    # Keep-alive: the page fetches several files; one connection avoids a handshake per file.
    protocol_version = "HTTP/1.1"
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **EXTRA_TYPES}
    quiet = False

    def end_headers(self) -> None:
        """Add the isolation headers to every answer, errors included."""
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer the health path, else serve a file."""
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            self._health(with_body=True)
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        """HEAD of the health path, else of a file."""
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            self._health(with_body=False)
            return
        super().do_HEAD()

    def _health(self, with_body: bool) -> None:
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def list_directory(self, path):
        """Never list folders: a missing index is an error, not a file browser."""
        self.send_error(HTTPStatus.NOT_FOUND, "No directory listings")
        return None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        """One line per request on stderr, unless ``--quiet``."""
        if not self.quiet:
            super().log_message(format, *args)


def make_server(
    root: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = False
) -> ThreadingHTTPServer:
    """A server for ``root`` bound to ``host:port`` (port 0 picks a free one), not yet serving."""
    handler = type("Handler", (DemoHandler,), {"quiet": quiet})
    server = ThreadingHTTPServer((host, port), partial(handler, directory=str(root)))
    server.daemon_threads = True
    return server


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; print the URL first so a parent process can read the port."""
    parser = argparse.ArgumentParser(description="Serve the WebGPU demo over http.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (0.0.0.0 in a container).")
    parser.add_argument("--port", type=int, default=8080, help="Port (0 picks a free one).")
    parser.add_argument("--root", type=Path, required=True, help="Assembled site folder.")
    parser.add_argument("--quiet", action="store_true", help="Do not log each request.")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if not (root / "index.html").is_file():
        print(f"serve: {root} has no index.html; give --root an assembled site", file=sys.stderr)
        return 2
    if not (root / "ort").is_dir():
        # The page explains this too, but a missing runtime is easier to fix when said up front.
        print(
            f"serve: warning: {root}/ort is missing; run assemble.py to add onnxruntime-web", file=sys.stderr
        )
    signal.signal(signal.SIGTERM, _stop)
    server = make_server(root, args.host, args.port, args.quiet)
    host, port = server.server_address[:2]
    print(f"serving http://{host}:{port}/ from {root}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
