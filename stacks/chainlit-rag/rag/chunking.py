"""Cut located blocks into overlapping windows of words, keeping where each window came from.

Windows never cross a block (a Markdown section, a PDF page), so every chunk has one location.
The default size, 180 words, is about what all-MiniLM-L6-v2 reads (256 word pieces) before it
truncates; the overlap keeps a sentence cut at a window's edge whole in the neighbouring one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rag.loaders import Block

DEFAULT_SIZE = 180
DEFAULT_OVERLAP = 40


@dataclass(frozen=True)
class Chunk:
    """One retrievable passage of a document."""

    id: str
    doc: str  # path relative to the documents folder
    text: str
    section: str
    start_line: int
    end_line: int
    page: int | None = None

    @property
    def location(self) -> str:
        """Where the passage is, for a citation: ``§ Setup › Keys, lines 4-19`` or ``page 3``."""
        if self.page is not None:
            return self.section or f"page {self.page}"
        lines = (
            f"line {self.start_line}"
            if self.start_line == self.end_line
            else f"lines {self.start_line}-{self.end_line}"
        )
        return f"{self.section}, {lines}" if self.section else lines

    def to_dict(self) -> dict:
        """A JSON-ready record."""
        return {
            "id": self.id,
            "doc": self.doc,
            "text": self.text,
            "section": self.section,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "page": self.page,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Chunk:
        """The chunk a :meth:`to_dict` record describes."""
        return cls(**data)


def chunk_blocks(
    doc: str, blocks: list[Block], size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Windows of ``size`` words, each starting ``size - overlap`` words after the previous one."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size (got size={size}, overlap={overlap})")
    chunks: list[Chunk] = []
    for block in blocks:
        words = [
            (word, block.line + offset)
            for offset, line in enumerate(block.text.splitlines())
            for word in line.split()
        ]
        start = 0
        while start < len(words):
            window = words[start : start + size]
            chunks.append(_chunk(doc, len(chunks), window, block))
            if start + size >= len(words):
                break
            start += size - overlap
    return chunks


def _chunk(doc: str, ordinal: int, window: list[tuple[str, int]], block: Block) -> Chunk:
    lines: list[list[str]] = []
    previous = None
    for word, line in window:
        if line != previous:
            lines.append([])
            previous = line
        lines[-1].append(word)
    text = "\n".join(" ".join(words) for words in lines)
    digest = hashlib.sha1(f"{doc}\0{ordinal}\0{text}".encode()).hexdigest()[:16]
    return Chunk(
        id=digest,
        doc=doc,
        text=text,
        section=block.section,
        start_line=window[0][1],
        end_line=window[-1][1],
        page=block.page,
    )
