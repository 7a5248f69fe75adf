"""The Chainlit RAG app in its real container, against the real gateway and model host, driven over Socket.IO.

A module-scoped stack (both bundled tiny models, the app built from stacks/chainlit-rag) is
brought up through ``ops up``'s library call, which proves the chain itself. The tests then chat
as a browser would (sign in, Socket.IO, ``client_message``), and assert on what retrieval decides
(the cited sources) and on tokens arriving: the tiny models' answers are gibberish by design.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ops import lifecycle, profiles
from ops.cli import main
from ops.errors import OpsError
from ops.host import process
from ops.plan import resolve
from ops.rag import LINK
from ops.services import chainlit
from ops.state import StackState
from tests.integration.hosts import free_port, module_home

STACK = "clrag"
SERVICE = "rag"
QUESTION = "Which port does the WebGPU demo listen on?"


home, ops_home = module_home("clrag-home")


@pytest.fixture(scope="module")
def stack(home, tmp_path_factory, docker_client, base_image):
    app_port, gateway_port = free_port(), free_port()
    path = tmp_path_factory.mktemp("clrag") / f"{STACK}.yaml"
    path.write_text(
        f"""\
name: {STACK}
models:
  tiny: {{path: bundled:tiny-fp32}}
  tiny-int4: {{path: bundled:tiny-int4}}
gateway: {{port: {gateway_port}, bind: [127.0.0.1, stack-gateway], default_max_tokens: 24}}
services:
  {SERVICE}:
    kind: chainlit-rag
    image_policy: build
    ports: ["127.0.0.1:{app_port}:8000"]
    volumes: ["docs:/data/docs", "index:/data/index"]
    environment: {{RAG_MAX_TOKENS: 24}}
    health: {{http: /health, timeout: 300}}
volumes:
  docs: {{}}
  index: {{}}
"""
    )
    loaded = profiles.load_path(path)
    lifecycle.down(
        resolve(loaded, ask_catalog=False), remove_volumes=True
    )  # from nothing, even after an interrupted run
    started = time.monotonic()
    try:
        report = lifecycle.up(resolve(loaded), say=print)
        print(f"ops up {STACK} from nothing: ready in {time.monotonic() - started:.1f} s")
        yield loaded, report, f"http://127.0.0.1:{app_port}"
    finally:
        lifecycle.down(resolve(loaded, ask_catalog=False), remove_volumes=True)


def cookies_for(loaded, url: str) -> dict[str, str]:
    secrets = StackState.for_stack(loaded.name).secrets
    return chainlit.sign_in(url, chainlit.USERNAME, secrets.get(chainlit.PASSWORD))


def ingest(loaded, capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main(["rag", "ingest", str(loaded.path), *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_up_proves_the_chain_with_both_models_and_sources(stack):
    _, report, url = stack
    detail = report.chain[SERVICE]
    assert detail.startswith("2 models offered; tiny streamed"), detail
    assert "sources: rag.md" in detail and "(hybrid)" in detail
    assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}


def test_auth_is_on(stack):
    loaded, _, url = stack
    assert httpx.get(f"{url}/project/settings", timeout=10).status_code == 401
    wrong = httpx.post(f"{url}/login", data={"username": "workshop", "password": "guess"}, timeout=10)
    assert wrong.status_code == 401
    with (
        pytest.raises(OpsError, match="refused the Socket.IO connection"),
        chainlit.ChatClient(url, {}, timeout=20),
    ):
        pass


def test_pages_of_other_origins_may_not_use_the_app(stack):
    """No CORS for another origin (the sign-in cookie is not theirs to use); Socket.IO refuses them."""
    loaded, _, url = stack
    own = url
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    evil = httpx.options(f"{url}/project/settings", headers={"Origin": "http://evil.example", **preflight})
    assert "access-control-allow-origin" not in evil.headers
    poll = f"{url}/ws/socket.io/?EIO=4&transport=polling"
    assert httpx.get(poll, headers={"Origin": "http://evil.example"}, timeout=10).status_code == 400
    assert httpx.get(poll, headers={"Origin": "http://127.0.0.1:1"}, timeout=10).status_code == 400
    assert httpx.get(poll, headers={"Origin": own}, timeout=10).status_code == 200
    assert httpx.get(poll, timeout=10).status_code == 200  # no Origin: not a browser page
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:  # ops's own client still gets in
        assert chat.ask("Which port does the WebGPU demo listen on?").source_docs


def test_the_real_image_runs_without_capabilities(stack, docker_client):
    container = docker_client.containers.get(f"ops-{STACK}-{SERVICE}")
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"] and host["PidsLimit"] == 1024
    code, status = container.exec_run(["grep", "-E", "^(CapEff|NoNewPrivs):", "/proc/1/status"])
    assert code == 0 and status.split() == [b"CapEff:", b"0000000000000000", b"NoNewPrivs:", b"1"]


def test_header_sign_in_needs_the_proxys_shared_secret(stack, docker_client):
    """RAG_AUTH=header: X-Forwarded-User alone signs nobody in; without RAG_PROXY_SECRET the app does not start."""
    image = docker_client.containers.get(f"ops-{STACK}-{SERVICE}").image.id
    labels = {"ops.test": "true"}
    refused = docker_client.containers.run(
        image, environment={"RAG_AUTH": "header"}, labels=labels, detach=True
    )
    try:
        assert refused.wait(timeout=60)["StatusCode"] != 0
        assert b"RAG_PROXY_SECRET" in refused.logs()
    finally:
        refused.remove(force=True)
    secret = "proxy-secret-" + "x" * 20
    port = free_port()
    app = docker_client.containers.run(
        image,
        environment={
            "RAG_AUTH": "header",
            "RAG_PROXY_SECRET": secret,
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "CHAINLIT_AUTH_SECRET": "jwt-secret-" + "y" * 40,
        },
        ports={"8000/tcp": ("127.0.0.1", port)},
        labels=labels,
        detach=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            app.reload()
            assert app.status == "running" and time.monotonic() < deadline, app.logs()[-2000:]
            time.sleep(1)
        forged = httpx.post(f"{base}/auth/header", headers={"X-Forwarded-User": "admin"}, timeout=10)
        assert forged.status_code == 401
        wrong = httpx.post(
            f"{base}/auth/header",
            headers={"X-Forwarded-User": "admin", "X-Proxy-Secret": "guess"},
            timeout=10,
        )
        assert wrong.status_code == 401
        proxied = httpx.post(
            f"{base}/auth/header", headers={"X-Forwarded-User": "ada", "X-Proxy-Secret": secret}, timeout=10
        )
        assert proxied.status_code == 200 and proxied.cookies
    finally:
        app.remove(force=True)


def test_a_question_streams_tokens_and_cites_the_document_that_answers_it(stack):
    loaded, _, url = stack
    with chainlit.ChatClient(url, cookies_for(loaded, url), profile="tiny") as chat:
        answer = chat.ask(QUESTION)
    assert answer.model == "tiny"
    assert len(answer.tokens) > 1 and "".join(answer.tokens) in answer.text
    assert answer.source_docs[0] == "webgpu-demo.md"
    first = answer.sources[0]
    assert first["location"].startswith("§ The WebGPU demo") and first["excerpt"]
    assert "**Sources**" in answer.text and "`webgpu-demo.md`" in answer.text
    assert sorted(answer.elements) == [f"Source {n}" for n in range(1, len(answer.sources) + 1)]
    assert answer.metadata["retrieval"] == "hybrid" and not answer.metadata["error"]


def test_switching_the_model_answers_from_the_other_one(stack):
    loaded, _, url = stack
    cookies = cookies_for(loaded, url)
    with chainlit.ChatClient(url, cookies, profile="tiny") as chat:
        assert chat.ask(QUESTION).model == "tiny"
        chat.set_model("tiny-int4")
        again = chat.ask("How do I get the gateway's key?")
    assert again.model == "tiny-int4" and again.tokens
    assert again.source_docs[0] == "gateway.md"
    with chainlit.ChatClient(url, cookies, profile="tiny-int4") as chat:
        assert chat.ask(QUESTION).model == "tiny-int4"


def test_a_model_that_disappeared_is_replaced_with_a_notice(stack):
    loaded, _, url = stack
    with chainlit.ChatClient(url, cookies_for(loaded, url), profile="tiny") as chat:
        chat.set_model("gone-model")
        answer = chat.ask(QUESTION)
    assert answer.model == "tiny" and answer.tokens
    assert any("`gone-model` is not served any more" in n for n in answer.notices)


def test_an_empty_question_and_a_huge_paste(stack):
    loaded, _, url = stack
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:
        empty = chat.ask("   ")
        assert empty.text == "Please type a question about the documents." and not empty.tokens
        huge = chat.ask("Which port does the WebGPU demo use? " + "log line 42 ok " * 40_000)
    assert huge.metadata["truncated"] is True and huge.tokens
    assert any("only its first" in n for n in huge.notices)
    assert huge.source_docs[0] == "webgpu-demo.md"


def test_ops_rag_ingest_adds_changes_and_deletes_documents(stack, tmp_path, capsys):
    loaded, _, url = stack
    note = tmp_path / "quokka-festival.md"
    note.write_text("# Quokka festival\nThe quokka festival takes place on Rottnest island every March.\n")
    report = ingest(loaded, capsys, str(note))
    assert report["copied"] == ["quokka-festival.md"]
    assert report["added"] == ["quokka-festival.md"] and not report["changed"] and not report["deleted"]
    assert report["unchanged"] == 8 and report["embedder"] == "local:all-MiniLM-L6-v2"
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:
        assert chat.ask("When is the quokka festival?").source_docs[0] == "quokka-festival.md"

    note.write_text("# Quokka festival\nThe quokka festival moved to October.\n")
    assert ingest(loaded, capsys, str(note))["changed"] == ["quokka-festival.md"]
    removed = ingest(loaded, capsys, "--remove", "quokka-festival.md")
    assert removed["deleted"] == ["quokka-festival.md"] and removed["unchanged"] == 8
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:
        assert "quokka-festival.md" not in chat.ask("When is the quokka festival?").source_docs


def test_ops_rag_ingest_never_follows_a_link(stack, tmp_path, capsys, docker_client):
    """A document that is a link to a private file is reported as skipped; its target never reaches the library."""
    loaded, _, _ = stack
    private = tmp_path / "credentials"
    private.write_text("aws_secret_access_key = wJalrXUtnFEMIK7MDENG\n")
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "notes.md").symlink_to(private)
    (folder / "real.md").write_text("# Real\nA real note about wombats.\n")
    report = ingest(loaded, capsys, str(folder))
    assert report["copied"] == ["batch/real.md"]
    assert {"path": "batch/notes.md", "reason": LINK} in report["skipped"]
    found = docker_client.containers.get(f"ops-{STACK}-{SERVICE}")
    code, out = found.exec_run(["grep", "-rl", "wJalrXUtnFEMIK7MDENG", "/data/docs"])
    assert code == 1, out  # nothing in the library holds the secret
    ingest(loaded, capsys, "--remove", "batch/real.md")


def test_a_corrupt_pdf_is_skipped_with_its_reason_and_the_rest_is_indexed(stack, tmp_path, capsys):
    loaded, _, url = stack
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\nthis file was cut off in the middle")
    (folder / "ferries.txt").write_text("The ferry to Skerry island leaves every hour from pier 9.\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    report = ingest(loaded, capsys, str(folder))
    assert report["added"] == ["batch/ferries.txt"]
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert "PDF" in skipped["batch/broken.pdf"]
    assert skipped["batch/photo.jpg"].startswith("not copied: unsupported file type")
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:
        assert chat.ask("Which pier does the Skerry ferry leave from?").source_docs[0] == "batch/ferries.txt"


def test_with_the_gateway_down_the_chat_says_so_and_the_app_stays_up(stack):
    loaded, _, url = stack
    cookies = cookies_for(loaded, url)
    assert process.stop(StackState.for_stack(loaded.name))
    try:
        with chainlit.ChatClient(url, cookies) as chat:
            answer = chat.ask(QUESTION)
        assert "cannot be reached right now" in answer.text and not answer.tokens
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        lifecycle.up(resolve(loaded))
    with chainlit.ChatClient(url, cookies) as chat:
        assert chat.ask(QUESTION).tokens


def test_the_index_survives_a_restart_of_the_stack(stack, tmp_path, capsys):
    loaded, _, url = stack
    kept = tmp_path / "lantern-guild.md"
    kept.write_text("# Lantern guild\nThe lantern guild meets in the old boathouse on Thursdays.\n")
    before = ingest(loaded, capsys, str(kept))
    # A lost index would be rebuilt at start as generation 1; this one has been rewritten since.
    assert before["added"] == ["lantern-guild.md"] and before["generation"] > 1
    lifecycle.down(resolve(loaded, ask_catalog=False))
    report = lifecycle.up(resolve(loaded))
    assert report.services[0].action == "create"
    after = ingest(loaded, capsys)
    assert after["added"] == [] and after["changed"] == [] and after["deleted"] == []
    assert after["unchanged"] == before["unchanged"] + 1 and after["chunks"] == before["chunks"]
    # Not rewritten since: the app's own sync at start found the stored index current.
    assert after["generation"] == before["generation"]
    with chainlit.ChatClient(url, cookies_for(loaded, url)) as chat:
        assert chat.ask("Where does the lantern guild meet?").source_docs[0] == "lantern-guild.md"
