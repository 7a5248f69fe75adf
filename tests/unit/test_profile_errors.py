"""Every bad-profile case: one located line with a fix, exit code 2, nothing created."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops.cli import main

GOOD = """\
name: demo
models:
  tiny:
    path: ./model
services:
  web:
    kind: open-webui
    ports: ["127.0.0.1:3000:8080"]
    volumes: ["data:/app/backend/data"]
  rag:
    kind: chainlit-rag
    ports: ["8501:8000"]
    depends_on: [web]
volumes:
  data: {}
"""


@pytest.fixture
def write(tmp_path):
    """Write a profile next to a fake model folder; return its path."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "genai_config.json").write_text("{}")

    def _write(text: str | bytes, name: str = "p.yaml") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return _write


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_good_profile_validates(write, capsys):
    code, out, err = run(capsys, "validate", str(write(GOOD)))
    assert code == 0, err
    assert "ok" in out and "demo" in out


# (name, profile text, expected line, expected "field: message" regex, expected hint regex)
CASES = [
    (
        "unknown key with did-you-mean",
        GOOD.replace("    kind: chainlit-rag", "    kind: chainlit-rag\n    enviroment: {A: b}"),
        12,
        r"services\.rag\.enviroment: unknown key 'enviroment' \(did you mean 'environment'\?\)",
        r"valid keys here: .*environment",
    ),
    (
        "unknown top-level key",
        GOOD + "servics: {}\n",
        16,
        r"servics: unknown key 'servics' \(did you mean 'services'\?\)",
        r"valid keys here",
    ),
    (
        "wrong type",
        GOOD.replace("name: demo", "name: demo\ngateway:\n  port: lots"),
        3,
        r"gateway\.port: expected an integer, got 'lots'",
        r"type",
    ),
    (
        "bad port spec",
        GOOD.replace('["8501:8000"]', '["8501"]'),
        12,
        r'services\.rag\.ports\[0\]: expected "\[HOST_IP:\]HOST_PORT:CONTAINER_PORT" .* got "8501"',
        r"HOST:CONTAINER",
    ),
    (
        "port out of range",
        GOOD.replace('["8501:8000"]', '["70000:8000"]'),
        12,
        r"services\.rag\.ports\[0\]: port 70000 .* outside 1-65535",
        r"HOST:CONTAINER",
    ),
    (
        "duplicate host ports",
        GOOD.replace('["8501:8000"]', '["127.0.0.1:3000:8000"]'),
        12,
        r"services\.rag\.ports\[0\]: host port 3000 is already used by services\.web\.ports\[0\]",
        r"its own host port",
    ),
    (
        "service port on the gateway's port",
        GOOD.replace('["8501:8000"]', '["8000:8000"]'),
        12,
        r"services\.rag\.ports\[0\]: host port 8000 is the gateway's port",
        r"another host port",
    ),
    (
        "relative volume target",
        GOOD.replace('"data:/app/backend/data"', '"data:app/data"'),
        9,
        r"services\.web\.volumes\[0\]: the container path must be absolute, got \"app/data\"",
        r"absolute",
    ),
    (
        "undeclared volume",
        GOOD.replace('"data:/app/backend/data"', '"dat:/app/backend/data"'),
        9,
        r"services\.web\.volumes\[0\]: volume 'dat' is not declared \(did you mean 'data'\?\)",
        r"top-level `volumes:`",
    ),
    (
        "unknown service kind",
        GOOD.replace("kind: open-webui", "kind: open-webiu"),
        7,
        r"services\.web\.kind: unknown service kind 'open-webiu' \(did you mean 'open-webui'\?\)",
        r"valid kinds: chainlit-rag, container, open-webui, webgpu-demo",
    ),
    (
        "unknown depends_on target",
        GOOD.replace("depends_on: [web]", "depends_on: [wbe]"),
        13,
        r"services\.rag\.depends_on\[0\]: unknown service 'wbe' \(did you mean 'web'\?\)",
        r"services in this profile: web, rag",
    ),
    (
        "dependency cycle",
        GOOD.replace("    kind: open-webui", "    kind: open-webui\n    depends_on: [rag]"),
        8,
        r"services\.web\.depends_on: dependency cycle: web -> rag -> web",
        r"remove one of these depends_on",
    ),
    (
        "self dependency",
        GOOD.replace("depends_on: [web]", "depends_on: [rag]"),
        13,
        r"services\.rag\.depends_on: dependency cycle: rag -> rag",
        r"depends_on",
    ),
    (
        "YAML syntax error",
        GOOD.replace('ports: ["8501:8000"]', 'ports: ["8501:8000"'),
        None,
        r"YAML syntax error",
        r"indentation and quoting",
    ),
    (
        "duplicate key",
        GOOD.replace("  rag:\n", "  web:\n"),
        10,
        r"services\.web: duplicate key 'web' \(first on line 6\)",
        r"silently keep only the last",
    ),
    (
        "model with both sources",
        GOOD.replace("    path: ./model", "    path: ./model\n    catalog: phi-4-mini"),
        3,
        r"models\.tiny: give exactly one of `catalog:`",
        r"catalog: ALIAS",
    ),
    (
        "no models",
        GOOD.replace("models:\n  tiny:\n    path: ./model\n", "models: {}\n"),
        2,
        r"models: list at least one model",
        r"catalog: ALIAS",
    ),
    (
        "missing models",
        GOOD.replace("models:\n  tiny:\n    path: ./model\n", ""),
        1,
        r"models: required key 'models' is missing",
        r"add `models:`",
    ),
    (
        "bad bind address",
        GOOD.replace("name: demo", "name: demo\ngateway:\n  bind: [localhost:80]"),
        3,
        r"gateway\.bind: \"localhost:80\" is not an IP address",
        r"stack-gateway",
    ),
    (
        "literal choice",
        GOOD.replace("    kind: chainlit-rag", "    kind: chainlit-rag\n    image_policy: always"),
        12,
        r"services\.rag\.image_policy: expected one of 'pull', 'build' or 'pull-or-build', got 'always'",
        r"use one of",
    ),
    (
        "model folder without genai_config.json",
        GOOD.replace("path: ./model", "path: ./"),
        4,
        r"models\.tiny\.path: model folder .* has no genai_config\.json",
        r"ONNX Runtime GenAI model folder",
    ),
    (
        "model folder missing",
        GOOD.replace("path: ./model", "path: ./nowhere"),
        4,
        r"models\.tiny\.path: model folder .*nowhere does not exist",
        r"relative paths start at the profile",
    ),
    (
        "unknown bundled model",
        GOOD.replace("path: ./model", "path: bundled:tiny-fp64"),
        4,
        r"models\.tiny\.path: no bundled model 'tiny-fp64'",
        r"bundled models:",
    ),
    (
        "alias to unknown model",
        GOOD.replace("name: demo", "name: demo\ngateway:\n  aliases: {small: tinny}"),
        3,
        r"gateway\.aliases\.small: alias 'small' points at unknown model 'tinny' \(did you mean 'tiny'\?\)",
        r"models in this profile: tiny",
    ),
    (
        "not a mapping",
        "- just\n- a list\n",
        None,
        r"a profile must be a mapping",
        r"models:",
    ),
    (
        "invalid stack name",
        GOOD.replace("name: demo", "name: Demo Stack"),
        1,
        r'name: "Demo Stack" is not a valid stack name',
        r"lower-case",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "message", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_profile(write, capsys, ops_home, text, line, message, hint):
    path = write(text)
    for command in ("validate", "up"):
        code, out, err = run(capsys, command, str(path))
        assert code == 2, (command, err)
        first, hint_line = err.splitlines()[:2]
        where = rf"error: {re.escape(str(path))}:{line} " if line else rf"error: {re.escape(str(path))}:\d+: "
        assert re.match(where, first), first
        assert re.search(message, first), first
        assert hint_line.startswith("hint: ") and re.search(hint, hint_line), hint_line
        assert "Traceback" not in out + err
    assert not ops_home.exists(), "a bad profile must not create any state"


@pytest.mark.parametrize(
    ("make", "message", "hint"),
    [
        (lambda w, p: w("", "empty.yaml"), r"empty\.yaml: the profile is empty", r"at least `models:`"),
        (lambda w, p: w("# only a comment\n", "c.yaml"), r"c\.yaml: the profile is empty", r"models:"),
        (lambda w, p: p / "missing.yaml", r"missing\.yaml: no such file", r"ops profiles"),
        (lambda w, p: p, r": is a directory, not a profile file", r"give a YAML file"),
        (
            lambda w, p: w(b"name: demo\nmodels:\n  t\xe9:\n    path: ./model\n", "latin1.yaml"),
            r"latin1\.yaml:3: not UTF-8 text \(byte 0xe9",
            r"UTF-8",
        ),
    ],
    ids=["empty file", "only comments", "missing file", "directory", "non-UTF-8 bytes"],
)
def test_unreadable_profile(write, tmp_path, capsys, ops_home, make, message, hint):
    path = make(write, tmp_path)
    code, out, err = run(capsys, "validate", str(path) + ("/" if path.is_dir() else ""))
    assert code == 2
    first, hint_line = err.splitlines()[:2]
    assert first.startswith("error: ") and re.search(message, first), first
    assert re.search(hint, hint_line), hint_line
    assert not ops_home.exists()


def test_unknown_profile_name_suggests(capsys):
    code, out, err = run(capsys, "validate", "workshp")
    assert code == 2
    assert "no profile named 'workshp' (did you mean 'workshop'?)" in err
    assert "available:" in err and "offline" in err


def test_validate_lists_every_problem(write, capsys):
    text = GOOD.replace("kind: open-webui", "kind: nope").replace("depends_on: [web]", "depends_on: [zzz]")
    code, out, err = run(capsys, "validate", str(write(text)))
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "services.web.kind" in errors[0] and "services.rag.depends_on[0]" in errors[1]


def test_validate_json_problems(write, capsys):
    import json

    code, out, err = run(capsys, "validate", "--json", str(write(GOOD.replace('["8501:8000"]', '["x"]'))))
    assert code == 2
    data = json.loads(out)
    assert data["ok"] is False
    assert data["problems"][0]["line"] == 12
    assert data["problems"][0]["field"] == "services.rag.ports[0]"


def test_billion_laughs_fails_fast(write, capsys, ops_home):
    """Nested YAML aliases that expand to 10^9 values are refused at once, not walked (exit 2)."""
    import time

    levels = ['lol0: &l0 ["lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*l{i - 1}"] * 10)
        levels.append(f"lol{i}: &l{i} [{refs}]")
    text = "name: demo\nmodels:\n  tiny:\n    path: ./model\nx-bomb:\n" + "".join(
        f"  {line}\n" for line in levels
    )
    started = time.monotonic()
    code, out, err = run(capsys, "validate", str(write(text)))
    assert time.monotonic() - started < 2
    assert code == 2
    first, hint_line = err.splitlines()[:2]
    assert re.match(r"error: .*p\.yaml:\d+: the profile expands to more than \d+ values", first), first
    assert "aliases" in first and hint_line.startswith("hint: ")
    assert not ops_home.exists()


def test_a_few_aliases_still_work(write, capsys):
    """Anchors and aliases used the ordinary way (shared settings) are fine."""
    text = GOOD.replace(
        '    volumes: ["data:/app/backend/data"]\n',
        '    volumes: ["data:/app/backend/data"]\n    environment: &env {A: "1"}\n',
    ).replace("    depends_on: [web]\n", "    depends_on: [web]\n    environment: *env\n")
    code, out, err = run(capsys, "validate", str(write(text)))
    assert code == 0, err


@pytest.mark.parametrize(
    ("text", "source", "target", "read_only"),
    [
        ("C:\\Users\\ann\\docs:/data/docs", "C:\\Users\\ann\\docs", "/data/docs", False),
        ("C:/Users/ann/docs:/data/docs:ro", "C:/Users/ann/docs", "/data/docs", True),
        ("d:\\notes:/notes:rw", "d:\\notes", "/notes", False),
    ],
)
def test_a_windows_folder_with_its_drive_is_a_bind_mount(text, source, target, read_only):
    """The colon after a drive letter belongs to the path, as in Docker Desktop and Compose on Windows."""
    from ops.profiles.mappings import _volume

    mount = _volume(text)
    assert (mount.source, mount.target, mount.read_only, mount.is_bind) == (source, target, read_only, True)


@pytest.mark.parametrize("text", ["C:/x", "C:\\data", "C:\\data:data", "C:\\data:/x:rx"])
def test_a_windows_folder_without_a_container_path_is_still_refused(text):
    from ops.profiles.mappings import _volume

    with pytest.raises(ValueError):
        _volume(text)
