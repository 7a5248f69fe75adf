"""The ops side of the RAG app, without Docker: the container's wiring, the ingest's archive, the chat protocol parser."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from ops import profiles, rag
from ops.cli import main
from ops.errors import OpsError, UsageError
from ops.secrets import Secret, SecretStore
from ops.services import StackContext, chainlit


@pytest.fixture
def ctx(tmp_path):
    store = SecretStore(tmp_path / "secrets.json")
    return StackContext(
        "demo",
        "http://host.docker.internal:8123/v1",
        Secret("gateway-key-value"),
        store,
        ("tiny", "tiny-int4"),
        "http://127.0.0.1:8123/v1",
    )


def test_environment_wires_the_gateway_models_and_a_stable_password(ctx):
    env = chainlit.environment(ctx)
    assert env["OPENAI_BASE_URL"] == "http://host.docker.internal:8123/v1"
    assert env["OPENAI_API_KEY"].reveal() == "gateway-key-value"
    assert env["RAG_MODELS"] == "tiny,tiny-int4" and env["RAG_AUTH"] == "password"
    password, secret = env["RAG_PASSWORD"], env["CHAINLIT_AUTH_SECRET"]
    assert isinstance(password, Secret) and len(password.reveal()) >= 20
    assert isinstance(secret, Secret) and len(secret.reveal()) >= 32  # Chainlit signs JWTs with it
    assert chainlit.environment(ctx)["RAG_PASSWORD"] == password  # reused, so sessions survive
    assert set(ctx.secrets.names()) == {chainlit.PASSWORD, chainlit.AUTH_SECRET}


def test_pack_copies_indexable_files_owned_by_the_app_user(tmp_path):
    folder = tmp_path / "manuals"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.md").write_text("# A")
    (folder / "deep" / "b.pdf").write_bytes(b"%PDF")
    (folder / "photo.png").write_bytes(b"png")
    (folder / ".hidden.md").write_text("secret")
    single = tmp_path / "notes.txt"
    single.write_text("notes")
    data, copied, ignored = rag.pack([folder, single])
    assert copied == ["manuals/a.md", "manuals/deep/b.pdf", "notes.txt"]
    assert ignored == [("manuals/photo.png", "not copied: unsupported file type .png")]
    with data, tarfile.open(fileobj=data) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == [
            "manuals",
            "manuals/a.md",
            "manuals/deep",
            "manuals/deep/b.pdf",
            "notes.txt",
        ]
        assert {(m.uid, m.gid) for m in members.values()} == {(rag.APP_UID, 0)}
        assert members["manuals"].isdir() and tar.extractfile("notes.txt").read() == b"notes"


def test_pack_never_follows_links(tmp_path):
    """A document that is a link (to ~/.aws/credentials, say) is reported, never copied; so is a linked folder."""
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("aws_secret_access_key = wJalrXUtnFEMI")
    outside = tmp_path / "home" / "private"
    outside.mkdir()
    (outside / "diary.md").write_text("private")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "real.md").write_text("# real")
    (folder / "notes.md").symlink_to(secret)
    (folder / "more").symlink_to(outside, target_is_directory=True)
    given = tmp_path / "given.md"
    given.symlink_to(secret)
    data, copied, ignored = rag.pack([folder, given])
    with data, tarfile.open(fileobj=data) as tar:
        assert tar.getnames() == ["docs", "docs/real.md"]
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert copied == ["docs/real.md"]
    assert b"wJalrXUtnFEMI" not in contents
    reasons = dict(ignored)
    assert set(reasons) == {"docs/more", "docs/notes.md", "given.md"}
    assert all("symbolic link" in why for why in reasons.values())


def test_pack_streams_files_instead_of_reading_them_whole(tmp_path, monkeypatch):
    """A large document goes into the archive in chunks: nothing reads a whole file into memory."""
    big = tmp_path / "big.txt"
    with big.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: 64 MB on paper, nothing on disk
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self} whole"))
    reads: list[int] = []
    real_copy = tarfile.copyfileobj

    def copy(src, dst, length=None, *args, **kwargs):
        reads.append(length or 0)
        return real_copy(src, dst, length, *args, **kwargs)

    monkeypatch.setattr(tarfile, "copyfileobj", copy)
    data, copied, _ = rag.pack([big])
    with data:
        assert copied == ["big.txt"] and reads == [64 * 1024 * 1024]
        assert not isinstance(data, io.BytesIO)  # the archive itself is a temporary file, not memory
        data.seek(0, io.SEEK_END)
        assert data.tell() > 64 * 1024 * 1024


def test_pack_refuses_a_missing_path(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        rag.pack([tmp_path / "nope"])


@pytest.mark.parametrize("name", ["/etc/passwd", "../index/index.npz", ""])
def test_remove_stays_inside_the_library(name):
    with pytest.raises(UsageError):
        rag._inside("/data/docs", name)


def test_remove_names_a_file_in_the_library():
    assert rag._inside("/data/docs", "batch/old.md") == "/data/docs/batch/old.md"


def test_ingest_needs_a_chainlit_rag_service(tmp_path, capsys):
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\nmodels: {tiny: {path: bundled:tiny-fp32}}\n")
    with pytest.raises(UsageError, match="no enabled chainlit-rag services"):
        rag.rag_service(profiles.load_path(path))
    assert main(["rag", "ingest", str(path)]) == 2
    assert "add a service of kind chainlit-rag" in capsys.readouterr().err


def event(kind, **data):
    return (kind, data)


def test_the_protocol_parser_assembles_tokens_sources_and_notices():
    reply = {
        "id": "r1",
        "type": "assistant_message",
        "output": "Hello world\n\n**Sources**",
        "metadata": {"model": "tiny", "sources": [{"doc": "a.md", "location": "lines 1-2"}]},
    }
    events = [
        event("task_start"),
        event("new_message", id="s", type="run", output=""),
        event("new_message", id="n1", type="assistant_message", output="notice", metadata={"notice": True}),
        event("stream_start", id="r1", output="Hello"),
        event("stream_token", id="r1", token=" world"),
        event("stream_token", id="other", token="ignored"),
        ("new_message", reply),
        event("element", forId="r1", name="Source 1"),
        event("task_end"),
    ]
    answer = chainlit.ChatClient._answer(events)
    assert answer.tokens == ["Hello", " world"] and answer.model == "tiny"
    assert answer.source_docs == ["a.md"] and answer.elements == ["Source 1"]
    assert answer.notices == ["notice"] and answer.text.startswith("Hello world")


def test_the_protocol_parser_says_when_no_answer_came():
    with pytest.raises(OpsError, match="sent no answer"):
        chainlit.ChatClient._answer([event("task_start"), event("task_end")])
