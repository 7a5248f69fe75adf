"""Dense embeddings: the gateway's ``/v1/embeddings`` when the stack serves a model for it, else MiniLM in-process.

Every embedder returns unit-length float32 rows, so a dot product is the cosine similarity. Its
``id`` names the model: vectors from two different ids are never mixed in one index.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import httpx
import numpy as np

from rag.gateway import PRIVATE_HEADER, caller_headers

log = logging.getLogger(__name__)

#: all-MiniLM-L6-v2 was trained on inputs of at most 256 word pieces (sentence-transformers' limit).
MAX_TOKENS = 256
BATCH = 32


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def id(self) -> str:
        """A stable name for the vector space (the model)."""
        ...

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit-length float32 row per text."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        vectors = vectors.reshape(len(vectors), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class LocalEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime, from the folder ``rag.export_minilm`` wrote."""

    def __init__(self, folder: Path | str, threads: int = 0):
        import onnxruntime
        from tokenizers import Tokenizer

        folder = Path(folder)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    @property
    def id(self) -> str:
        """The model's name."""
        return "local:all-MiniLM-L6-v2"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` in batches."""
        rows = []
        for start in range(0, len(texts), BATCH):
            encoded = self._tokenizer.encode_batch(texts[start : start + BATCH])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            rows.append(self._session.run(["sentence_embedding"], feed)[0])
        return normalise(np.concatenate(rows)) if rows else np.zeros((0, 384), np.float32)


class GatewayEmbedder:
    """An embeddings model served by the stack's gateway (OpenAI ``/v1/embeddings``)."""

    def __init__(self, base_url: str, key: str, model: str, timeout: float = 60, private: bool = True):
        self.base_url = base_url.rstrip("/")
        self.model = model
        # Private: the gateway refuses to send the passages to a model that leaves the machine.
        self._headers = {"authorization": f"Bearer {key}", **(PRIVATE_HEADER if private else {})}
        self._timeout = timeout

    @property
    def id(self) -> str:
        """The served model's name."""
        return f"gateway:{self.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` through the gateway, in batches; raises ``httpx.HTTPError`` on failure."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            response = httpx.post(
                f"{self.base_url}/embeddings",
                json={"model": self.model, "input": texts[start : start + BATCH]},
                headers={**self._headers, **caller_headers()},
                timeout=self._timeout,
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda item: item["index"])
            rows.extend(item["embedding"] for item in data)
        return normalise(np.array(rows, dtype=np.float32)) if rows else np.zeros((0, 0), np.float32)


def choose(
    cards: list[dict],
    base_url: str,
    key: str,
    local_dir: Path | str | None,
    wanted: str = "",
    allow_remote: bool = False,
) -> Embedder | None:
    """The gateway's embeddings model (``wanted``, else the first listed), else the local MiniLM, else None.

    Only models that stay on this machine are used unless ``allow_remote`` (a card that does not say
    ``"remote": false`` counts as remote): the documents are not sent away to be embedded.
    """
    served = [
        c["id"]
        for c in cards
        if c.get("task") == "embeddings" and (allow_remote or c.get("remote", True) is False)
    ]
    if wanted and wanted not in served and any(c.get("id") == wanted for c in cards):
        log.warning(
            "embeddings model %s leaves this machine: not used (RAG_ALLOW_REMOTE_MODELS=true allows it)",
            wanted,
        )
    if wanted and wanted in served:
        return GatewayEmbedder(base_url, key, wanted, private=not allow_remote)
    if served and not wanted:
        return GatewayEmbedder(base_url, key, served[0], private=not allow_remote)
    if local_dir and (Path(local_dir) / "model.onnx").is_file():
        return LocalEmbedder(local_dir)
    log.warning("no embeddings model: retrieval is lexical (BM25) only")
    return None
