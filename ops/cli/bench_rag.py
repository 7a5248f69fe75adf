"""``ops bench-rag``: the RAG app's ingest and top-5 retrieval on a generated corpus, against rank-bm25."""

from __future__ import annotations

from pathlib import Path

import typer

from ops.cli import app, output


@app.command("bench-rag")
def rag_command(
    sizes: str = typer.Option("1000,10000", "--sizes", help="Corpus sizes, separated by commas."),
    queries: int = typer.Option(200, "--queries", min=1, help="Timed queries."),
    seed: int = typer.Option(7, "--seed", help="Corpus and query seed."),
    embedder_dir: Path = typer.Option(
        None, "--embedder-dir", help="An all-MiniLM-L6-v2 export (model.onnx, tokenizer.json)."
    ),
    dense_sizes: str = typer.Option(
        None, "--dense-sizes", help="Sizes also ingested with embeddings (default: the smallest)."
    ),
    in_process: bool = typer.Option(
        False, "--in-process", help="Ingest in this process (peak memory is then shared)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Benchmark the RAG app's ingest and retrieval against rank-bm25 (what Open WebUI uses)."""
    from ops.bench import rag

    result = rag.run(
        rag.parse_sizes(sizes),
        queries,
        seed,
        embedder_dir,
        None if dense_sizes is None else rag.parse_sizes(dense_sizes, "--dense-sizes"),
        isolate=not in_process,
        say=lambda text: output.note(text, style="dim"),
    )
    if json_:
        output.emit_json(result)
        return
    for text in rag.render(result).splitlines():
        output.line(text)
