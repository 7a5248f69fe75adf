"""The RAG app's document loaders: Markdown sections, text, HTML, PDF pages, and files that cannot be read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"
sys.path.insert(0, str(RECIPE))

from rag import loaders  # noqa: E402
from rag.index import Store  # noqa: E402


def make_pdf(pages: list[list[str]]) -> bytes:
    """A small, valid PDF with one text line per entry (Helvetica), written by hand: no PDF library writes text."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    font = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    for i, lines in enumerate(pages):
        text = " T* ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"
            for line in lines
        )
        stream = f"BT /F1 11 Tf 14 TL 72 720 Td {text} ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_markdown_is_cut_along_headings_with_their_path_and_first_line(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text(
        "Intro line.\n\n# Setup\nInstall it.\n\n## Keys\nThe key is secret.\n```\n# not a heading\n```\n# Use\nRun it.\n"
    )
    blocks = loaders.load(path)
    assert [(b.section, b.line) for b in blocks] == [
        ("", 1),
        ("§ Setup", 3),
        ("§ Setup › Keys", 6),
        ("§ Use", 11),
    ]
    assert "# not a heading" in blocks[2].text


def test_markdown_cites_the_first_line_with_text_after_leading_blank_lines(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("\n\nIntro on line three.\n\n\n# Later\n\nBody on line eight.\n")
    assert [(b.section, b.line) for b in loaders.load(path)] == [("", 3), ("§ Later", 6)]


def test_pdf_pages_are_blocks_with_their_page_number(tmp_path):
    path = tmp_path / "two.pdf"
    path.write_bytes(make_pdf([["First page about lanterns."], ["Second page about", "harbour tides."]]))
    blocks = loaders.load(path)
    assert [(b.page, b.section) for b in blocks] == [(1, "page 1"), (2, "page 2")]
    assert "harbour tides" in blocks[1].text


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF",
            "PDF",
        ),
        (b"this is not a pdf at all", "PDF"),
        (b"", "PDF"),
    ],
)
def test_a_corrupt_pdf_raises_a_load_error_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    with pytest.raises(loaders.LoadError, match=reason):
        loaders.load(path)


def test_html_keeps_text_and_drops_scripts(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><script>var x = 'hidden';</script><style>p{}</style></head>"
        "<body><h1>Title</h1><p>Visible &amp; kept.</p></body></html>"
    )
    (block,) = loaders.load(path)
    assert "Visible & kept." in block.text and "Title" in block.text and "hidden" not in block.text


def test_text_in_latin_1_is_read_and_binary_is_refused(tmp_path):
    old = tmp_path / "old.txt"
    old.write_bytes("caf\xe9 au lait".encode("latin-1"))
    assert loaders.load(old)[0].text == "café au lait"
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(loaders.LoadError, match="binary"):
        loaders.load(binary)


def test_the_ops_cli_copies_exactly_the_types_the_app_reads():
    from ops import rag

    assert set(rag.SUFFIXES) == set(loaders.SUFFIXES)


def test_the_shipped_sample_corpus_loads_completely(tmp_path):
    docs = RECIPE / "docs"
    names = sorted(p.name for p in docs.iterdir())
    assert {"gateway.md", "rag.md", "workshop-checklist.pdf", "profiles.html"} <= set(names)
    for path in docs.iterdir():
        assert loaders.load(path), path.name


def test_samples_are_seeded_once_only(tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    store = Store(index)
    assert store.seed(docs, RECIPE / "docs")
    for path in docs.iterdir():
        path.unlink()
    assert not store.seed(docs, RECIPE / "docs")  # the user emptied the library on purpose
    assert not any(docs.iterdir())
