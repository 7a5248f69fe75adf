"""The RAG app keeps the documents on this machine by default: local models only, every request marked private."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"))

from rag import embeddings, gateway  # noqa: E402
from rag.library import Library  # noqa: E402
from rag.settings import Settings  # noqa: E402

#: What the gateway lists: a remote embeddings model first (the one the app used to take), a local one.
LISTED = {
    "object": "list",
    "data": [
        {"id": "cloud", "task": "chat", "remote": True},
        {"id": "cloud-embed", "task": "embeddings", "remote": True},
        {"id": "phi", "task": "chat", "remote": False},
        {"id": "bag", "task": "embeddings", "remote": False},
    ],
}


@pytest.fixture
def gateway_lists(monkeypatch):
    """The gateway's ``/v1/models`` answers ``payload``; the requests' headers are kept."""
    seen: list[dict] = []

    def serve(payload):
        def get(url, headers=None, timeout=None):
            seen.append(dict(headers or {}))
            return httpx.Response(200, json=payload, request=httpx.Request("GET", url))

        monkeypatch.setattr(httpx, "get", get)
        return seen

    return serve


def library(tmp_path, **env) -> Library:
    settings = Settings.from_env(
        {"RAG_DOCS_DIR": str(tmp_path / "docs"), "RAG_INDEX_DIR": str(tmp_path / "index"), **env}
    )
    return Library(settings)


def test_remote_models_are_off_by_default_and_the_setting_is_checked():
    assert Settings.from_env({}).allow_remote is False
    assert Settings.from_env({"RAG_ALLOW_REMOTE_MODELS": "true"}).allow_remote is True
    assert Settings.from_env({"RAG_ALLOW_REMOTE_MODELS": "0"}).allow_remote is False
    with pytest.raises(SystemExit, match="RAG_ALLOW_REMOTE_MODELS must be true or false"):
        Settings.from_env({"RAG_ALLOW_REMOTE_MODELS": "maybe"})


def test_the_library_embeds_with_a_local_model_even_when_a_remote_one_is_listed_first(
    tmp_path, gateway_lists
):
    seen = gateway_lists(LISTED)
    chosen = library(tmp_path).choose_embedder()
    assert chosen is not None and chosen.id == "gateway:bag"
    assert seen and all(h.get("x-ops-private") == "true" for h in seen)


def test_only_a_remote_embeddings_model_means_no_gateway_embedder(tmp_path, gateway_lists):
    gateway_lists({"data": [{"id": "cloud-embed", "task": "embeddings", "remote": True}]})
    assert library(tmp_path).choose_embedder() is None  # no local MiniLM installed here: BM25 only
    # Named on purpose, still remote: not used.
    assert library(tmp_path, RAG_EMBEDDINGS_MODEL="cloud-embed").choose_embedder() is None


def test_a_gateway_that_does_not_say_where_a_model_runs_is_taken_at_its_worst(tmp_path, gateway_lists):
    gateway_lists({"data": [{"id": "old-embed", "task": "embeddings"}]})
    assert library(tmp_path).choose_embedder() is None
    assert gateway._cards({"data": [{"id": "m"}]})[0].remote is True


def test_remote_models_are_used_when_allowed_and_requests_are_then_not_marked(tmp_path, gateway_lists):
    seen = gateway_lists(LISTED)
    chosen = library(tmp_path, RAG_ALLOW_REMOTE_MODELS="yes").choose_embedder()
    assert chosen is not None and chosen.id == "gateway:cloud-embed"
    assert "x-ops-private" not in seen[-1]


def test_passages_and_questions_are_sent_marked_private(monkeypatch):
    sent: list[dict] = []

    def post(url, json=None, headers=None, timeout=None):
        sent.append(dict(headers or {}))
        data = [{"index": i, "embedding": [1.0, 0.0]} for i, _ in enumerate(json["input"])]
        return httpx.Response(200, json={"data": data}, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    embeddings.GatewayEmbedder("http://gw/v1", "k", "bag").embed(["a passage"])
    embeddings.GatewayEmbedder("http://gw/v1", "k", "cloud-embed", private=False).embed(["a passage"])
    assert sent[0]["x-ops-private"] == "true" and "x-ops-private" not in sent[1]


def test_chat_models_are_local_only_unless_allowed():
    cards = gateway._cards(LISTED)
    assert [c.id for c in gateway.local_only(cards, allow_remote=False)] == ["phi", "bag"]
    assert [c.id for c in gateway.local_only(cards, allow_remote=True)] == [
        "cloud",
        "cloud-embed",
        "phi",
        "bag",
    ]
    assert gateway.Gateway("http://gw/v1", "k").headers["x-ops-private"] == "true"
    assert "x-ops-private" not in gateway.Gateway("http://gw/v1", "k", private=False).headers
