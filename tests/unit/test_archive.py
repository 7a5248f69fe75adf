"""The archive format of backups and bundles: what is written is verified whole; anything else is refused."""

from __future__ import annotations

import json
import tarfile

import pytest

from ops import archive
from ops.archive import ArchiveError, ArchiveWriter


def make(tmp_path, compress=False, key=None):
    path = tmp_path / "a.tar"
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 3_000_000)
    with ArchiveWriter(path, "backup", meta={"stack": "s"}, compress=compress, seal_key=key) as w:
        w.add_bytes("secrets/none.json", b"{}")
        w.add_file("volumes/data.tar", source)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_written_then_verified_then_read(tmp_path, compress):
    path = make(tmp_path, compress)
    manifest = archive.verify(path, kind="backup")
    assert manifest.meta == {"stack": "s"} and manifest.payload_bytes == 3_000_002
    assert not (tmp_path / "a.tar.part").exists()
    read = {name: stream.read() for name, stream, _ in archive.read_members(path, manifest)}
    assert read["secrets/none.json"] == b"{}" and len(read["volumes/data.tar"]) == 3_000_000
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_truncated_archive_is_refused(tmp_path):
    path = make(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="torn|no manifest|missing"):
        archive.verify(path)


def test_a_changed_byte_is_refused(tmp_path):
    path = make(tmp_path)
    data = bytearray(path.read_bytes())
    data[data.index(b"xxxx") + 1000] = ord("y")
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="does not match its checksum"):
        archive.verify(path)


def rewrite_with(path, extra=None, drop=None, manifest_edit=None):
    """A copy of the archive with a member added or dropped, or the manifest changed (and not resealed)."""
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    with tarfile.open(path, "w") as out:
        for member, data in members:
            if member.name == drop:
                continue
            if member.name == archive.MANIFEST:
                if extra:
                    info = tarfile.TarInfo(extra)
                    info.size = 1
                    out.addfile(info, __import__("io").BytesIO(b"z"))
                if manifest_edit:
                    body = json.loads(data)
                    manifest_edit(body)
                    data = json.dumps(body).encode()
                    member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))


def test_an_extra_or_missing_member_is_refused(tmp_path):
    path = make(tmp_path)
    rewrite_with(path, extra="volumes/evil.tar")
    with pytest.raises(ArchiveError, match="not in the manifest"):
        archive.verify(path)
    path = make(tmp_path)
    rewrite_with(path, drop="secrets/none.json")
    with pytest.raises(ArchiveError, match="missing"):
        archive.verify(path)


def test_a_seal_detects_a_rewritten_manifest_and_a_wrong_key(tmp_path):
    key = archive.seal_key("correct horse", b"salt")
    path = make(tmp_path, key=key)
    assert archive.verify(path, seal_key=key).sealed
    with pytest.raises(ArchiveError, match="seal does not match"):
        archive.verify(path, seal_key=archive.seal_key("wrong", b"salt"))
    rewrite_with(path, manifest_edit=lambda body: body["meta"].update(stack="other"))
    with pytest.raises(ArchiveError, match="seal does not match"):
        archive.verify(path, seal_key=key)


def test_not_an_archive_another_kind_or_absent(tmp_path):
    (tmp_path / "x.tar").write_text("hello")
    with pytest.raises(ArchiveError, match="torn or not an archive"):
        archive.verify(tmp_path / "x.tar")
    with pytest.raises(ArchiveError, match="no archive at"):
        archive.verify(tmp_path / "absent.tar")
    path = make(tmp_path)
    with pytest.raises(ArchiveError, match="is an ops backup, not a bundle"):
        archive.verify(path, kind="bundle")


def test_an_interrupted_write_leaves_no_archive(tmp_path):
    path = tmp_path / "b.tar"
    with pytest.raises(RuntimeError), ArchiveWriter(path, "bundle") as w:
        w.add_bytes("one", b"1")
        raise RuntimeError("interrupted")
    assert not path.exists() and not (tmp_path / "b.tar.part").exists()


def test_member_names_must_be_relative(tmp_path):
    with ArchiveWriter(tmp_path / "c.tar", "bundle") as w, pytest.raises(ValueError):
        w.add_bytes("../escape", b"1")
