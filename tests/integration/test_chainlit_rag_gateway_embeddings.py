"""Dense retrieval through the gateway: when the profile serves an embeddings model, the app embeds with it.

The embeddings model is a real OpenAI-compatible server on this machine (started here) behind the
real gateway, as a `url:` model with `task: embeddings`; its vectors are a hashed bag of words, so
they are deterministic and need no model weights. The app in its container must choose it over
its built-in MiniLM, embed the passages and the questions through ``/v1/embeddings``, and still
cite the right document.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading

import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenacity import Retrying, stop_after_delay, wait_fixed

from ops import lifecycle, profiles
from ops.cli import main
from ops.plan import resolve
from ops.services import chainlit
from ops.state import StackState
from tests.integration.hosts import free_port, module_home

STACK = "clragemb"
DIM = 128


class EmbeddingsServer:
    """``POST /v1/embeddings``: one unit vector per input, a hashed bag of its words."""

    def __init__(self) -> None:
        self.inputs: list[str] = []
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        app = Starlette(
            routes=[
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        for attempt in Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.05), reraise=True):
            with attempt:
                assert self.server.started

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "bag", "object": "model"}]})

    async def _embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        self.inputs.extend(texts)
        data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": body.get("model")})


def vector(text: str) -> list[float]:
    row = np.zeros(DIM)
    for word in re.findall(r"[a-z]{3,}", text.lower()):
        row[int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1
    return (row / max(np.linalg.norm(row), 1e-12)).tolist()


home, ops_home = module_home("clragemb-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, base_image):
    server = EmbeddingsServer()
    server.start()
    app_port, gateway_port = free_port(), free_port()
    path = tmp_path_factory.mktemp("clragemb") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
  bag: {{url: "http://127.0.0.1:{server.port}/v1", task: embeddings, remote: false}}
gateway: {{port: {gateway_port}, bind: [127.0.0.1, stack-gateway], default_max_tokens: 16}}
services:
  rag:
    kind: chainlit-rag
    image_policy: build
    ports: ["127.0.0.1:{app_port}:8000"]
    volumes: ["docs:/data/docs", "index:/data/index"]
    environment: {{RAG_MAX_TOKENS: 16}}
    health: {{http: /health, timeout: 300}}
volumes:
  docs: {{}}
  index: {{}}
"""
    )
    loaded = profiles.load_path(path)
    lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
    try:
        report = lifecycle.up(resolve(loaded), say=print)
        yield loaded, report, f"http://127.0.0.1:{app_port}", server
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)
        server.stop()


def test_the_app_embeds_through_the_gateway_and_retrieves_with_it(stack, capsys):
    loaded, report, url, server = stack
    assert "(hybrid)" in report.chain["rag"]
    capsys.readouterr()
    assert main(["rag", "ingest", str(loaded.path), "--json"]) == 0
    ingest = json.loads(capsys.readouterr().out)
    assert ingest["embedder"] == "gateway:bag" and ingest["chunks"] > 0
    # The passages went through the gateway to the embeddings server (the sample corpus, by its words).
    assert any("onnxruntime-web" in text for text in server.inputs)

    question = "Which port does the WebGPU demo listen on?"
    secrets = StackState.for_stack(loaded.name).secrets
    cookies = chainlit.sign_in(url, chainlit.USERNAME, secrets.get(chainlit.PASSWORD))
    with chainlit.ChatClient(url, cookies) as chat:
        answer = chat.ask(question)
    assert question in server.inputs  # the question was embedded the same way
    assert answer.metadata["retrieval"] == "hybrid" and answer.model == "tiny"
    assert answer.source_docs[0] == "webgpu-demo.md" and answer.tokens
