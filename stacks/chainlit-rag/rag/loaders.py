"""Read a document into located blocks of text: Markdown sections, plain-text lines, PDF pages, HTML.

A :class:`Block` is text plus where it came from (a heading or a page, and its first line), so a
cited passage can say "§ Keys, lines 12-20" or "page 3". A file that cannot be read raises
:class:`LoadError` with a reason; the ingest skips it, logs the reason and goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

#: Suffixes the index reads, by loader.
SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".rst": "text",
    ".csv": "text",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class LoadError(Exception):
    """A document that cannot be read; the message is the reason."""


@dataclass(frozen=True)
class Block:
    """A run of text from one place in a document."""

    text: str
    section: str = ""  # "§ Heading" or "page N"; empty for a plain file
    line: int = 1  # first line of the block in the file (1 for PDF pages)
    page: int | None = None


def supported(path: Path) -> bool:
    """Whether the index reads files like ``path``."""
    return path.suffix.lower() in SUFFIXES


def load(path: Path) -> list[Block]:
    """The blocks of ``path``; raises :class:`LoadError` when it cannot be read."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise LoadError(f"unsupported file type {path.suffix or '(none)'}")
    if kind == "pdf":
        return _pdf(path)
    text = _text(path)
    if kind == "markdown":
        return _markdown(text)
    if kind == "html":
        return [Block(_html(text))]
    return [Block(text)]


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise LoadError("binary content in a text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Old Windows text files are common in shared folders; latin-1 never fails to decode.
        return raw.decode("latin-1")


def _markdown(text: str) -> list[Block]:
    """One block per heading section; the section names its heading path (``Setup › Keys``)."""
    blocks: list[Block] = []
    trail: list[tuple[int, str]] = []
    lines: list[str] = []
    start = 1
    fenced = False

    def flush(next_start: int) -> None:
        nonlocal lines, start
        # Cite the first line with text: a preamble may begin with blank lines.
        blank = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
        body = "\n".join(lines[blank:]).strip()
        if body:
            blocks.append(Block(body, "§ " + " › ".join(t for _, t in trail) if trail else "", start + blank))
        lines, start = [], next_start

    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            flush(number)
            level = len(match.group(1))
            trail = [(lvl, title) for lvl, title in trail if lvl < level] + [(level, match.group(2))]
        lines.append(line)
    flush(0)
    return blocks


def _pdf(path: Path) -> list[Block]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            raise LoadError("encrypted PDF")
        blocks = [
            Block(text.strip(), f"page {number}", 1, number)
            for number, page in enumerate(reader.pages, start=1)
            if (text := page.extract_text() or "").strip()
        ]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        # pypdf raises all of these on damaged files; the ingest must go on with the others.
        raise LoadError(f"unreadable PDF: {exc.__class__.__name__}: {str(exc)[:160]}") from None
    if not blocks:
        raise LoadError("no extractable text in the PDF (a scan needs OCR first)")
    return blocks


class _TextOfHtml(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template"}
    _BREAK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def _html(text: str) -> str:
    parser = _TextOfHtml()
    parser.feed(text)
    parser.close()
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()
