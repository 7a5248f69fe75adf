"""The batching app on a loopback port, in a thread of its own: an upstream like Foundry's web service.

    server = EngineServer({"smollm2": EngineModel(folder, "smollm2", Limits(max_batch=4))})
    server.start()          # binds 127.0.0.1 on a free port; returns once it accepts connections
    server.base_url         # http://127.0.0.1:PORT/v1: a gateway Route's base_url
    server.add(model) / server.remove(model_id)   # load and unload while serving
    server.close()          # stops serving, then every engine

The app runs on its own event loop in its own thread, so the gateway's loop never waits for it;
each model's engine runs in a further thread (:class:`~ops.batching.engine.BatchEngine`).

``python -m ops.batching.server --model ID=FOLDER [--port N] [--max-batch N] ...`` serves models
in the foreground and prints ``serving http://HOST:PORT/v1`` once it listens (the benchmarks run
it in a process of its own).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from ops.batching.app import create_app
from ops.batching.limits import Limits
from ops.batching.model import EngineModel


class EngineServer:
    """Serve ``models`` over HTTP on ``host:port`` (port 0: a free one) from a background thread."""

    def __init__(self, models: Mapping[str, EngineModel], host: str = "127.0.0.1", port: int = 0):
        self.models = dict(models)
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.models),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="batching-app", daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (ends in ``/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def add(self, model: EngineModel) -> None:
        """Serve ``model`` too (under its ``model_id``), from the next request on."""
        self.models[model.model_id] = model

    def remove(self, model_id: str) -> None:
        """Stop serving ``model_id`` (unknown from the next request on) and stop its engine."""
        model = self.models.pop(model_id, None)
        if model is not None:
            model.close()

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self, timeout: float = 10.0) -> EngineServer:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the batching app did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving, then stop every model's engine."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()
        for model in self.models.values():
            model.close()


def main(argv: list[str] | None = None) -> None:
    """Serve models in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m ops.batching.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", action="append", required=True, metavar="ID=FOLDER")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=Limits.max_batch)
    parser.add_argument("--max-queue", type=int, default=Limits.max_queue)
    parser.add_argument("--kv-cache-mb", type=float, default=None)
    parser.add_argument("--gather-ms", type=float, default=Limits.gather_s * 1000)
    parser.add_argument("--lanes", type=int, default=Limits.lanes)
    args = parser.parse_args(argv)
    limits = Limits(args.max_batch, args.max_queue, args.kv_cache_mb, args.gather_ms / 1000, args.lanes)
    models = {}
    for spec in args.model:
        model_id, _, folder = spec.partition("=")
        if not folder:
            parser.error(f"--model takes ID=FOLDER, got {spec!r}")
        models[model_id] = EngineModel(Path(folder), model_id, limits)
    server = EngineServer(models, args.host, args.port).start()
    print(f"serving {server.base_url}", flush=True)
    try:
        while server._thread.is_alive():
            server._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
