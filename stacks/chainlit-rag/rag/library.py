"""The document library as the app and the ingest command share it: seed, sync, and search.

The embedder is chosen at each sync (the gateway's embeddings model when it lists one that stays on
this machine, a remote one only with RAG_ALLOW_REMOTE_MODELS; else MiniLM in-process) and written
into the index; a process that only searches (the app, after ``ops rag ingest`` synced in another
process) takes the embedder the index names, so queries and passages are always embedded by the
same model.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from rag import embeddings
from rag.gateway import Gateway, GatewayError
from rag.index import Snapshot, Store, SyncReport
from rag.retrieval import Hit, Retriever
from rag.settings import Settings

log = logging.getLogger(__name__)


class Library:
    """Documents folder + index folder + the embedder that goes with the index."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings.index)
        self.gateway = Gateway(settings.base_url, settings.key, private=not settings.allow_remote)
        self._lock = threading.Lock()
        self._embedders: dict[str, embeddings.Embedder] = {}
        self._retriever: Retriever | None = None
        self._stamp: tuple[int, int] | None = None

    def choose_embedder(self, wait: float = 0.0) -> embeddings.Embedder | None:
        """The gateway's embeddings model if it serves one, else the local MiniLM (when installed).

        ``wait``: seconds to keep asking a gateway that does not answer yet (``ops up`` starts the
        model host and the containers at the same time, so at the app's start it may still be loading).
        """
        try:
            for attempt in Retrying(
                retry=retry_if_exception_type(GatewayError),
                stop=stop_after_delay(wait),
                wait=wait_fixed(1),
                reraise=True,
            ):
                with attempt:
                    cards = [
                        {"id": c.id, "task": c.task, "remote": c.remote} for c in self.gateway.models_sync()
                    ]
        except GatewayError as exc:
            log.info("no gateway for the embeddings choice (%s); using the local model", exc)
            cards = []
        chosen = embeddings.choose(
            cards,
            self.settings.base_url,
            self.settings.key,
            self.settings.embedder_dir,
            self.settings.embeddings_model,
            self.settings.allow_remote,
        )
        return self._remember(chosen)

    def embedder_for(self, embedder_id: str | None) -> embeddings.Embedder | None:
        """The embedder that made vectors named ``embedder_id`` (None when it cannot be had here)."""
        if not embedder_id:
            return None
        if embedder_id in self._embedders:
            return self._embedders[embedder_id]
        kind, _, name = embedder_id.partition(":")
        if kind == "gateway":
            return self._remember(
                embeddings.GatewayEmbedder(
                    self.settings.base_url, self.settings.key, name, private=not self.settings.allow_remote
                )
            )
        folder = self.settings.embedder_dir
        if folder and (Path(folder) / "model.onnx").is_file():
            return self._remember(embeddings.LocalEmbedder(folder))
        return None

    def _remember(self, embedder: embeddings.Embedder | None) -> embeddings.Embedder | None:
        if embedder is not None:
            self._embedders.setdefault(embedder.id, embedder)
            return self._embedders[embedder.id]
        return None

    def sync(self, seed: bool = True, wait_for_gateway: float = 0.0) -> SyncReport:
        """Seed the samples into an empty library (first start only), then index what changed."""
        s = self.settings
        s.docs.mkdir(parents=True, exist_ok=True)
        if seed and self.store.seed(s.docs, s.samples):
            log.info("copied the sample documents from %s into %s", s.samples, s.docs)
        embedder = self.choose_embedder(wait_for_gateway)
        report = self.store.sync(s.docs, embedder, s.chunk_size, s.chunk_overlap)
        for skipped in report.skipped:
            log.warning("not indexed: %s: %s", skipped.path, skipped.reason)
        log.info(
            "index: %d added, %d changed, %d deleted, %d unchanged, %d skipped; %d chunks (%s, %.1f s)",
            len(report.added),
            len(report.changed),
            len(report.deleted),
            report.unchanged,
            len(report.skipped),
            report.chunks,
            report.embedder or "BM25 only",
            report.seconds,
        )
        return report

    def retriever(self) -> Retriever:
        """A retriever over the index as it is now (reloaded when another process replaced it)."""
        with self._lock:
            stamp = self.store.stamp()
            if self._retriever is None or stamp != self._stamp:
                snapshot = self.store.load()
                if snapshot is None:
                    snapshot = Snapshot.empty(self.settings.chunk_size, self.settings.chunk_overlap)
                self._retriever = Retriever(snapshot, self.embedder_for(snapshot.manifest.get("embedder")))
                self._stamp = stamp
            return self._retriever

    def search(self, question: str) -> list[Hit]:
        """The best passages for ``question``."""
        return self.retriever().search(question, self.settings.top_k)
