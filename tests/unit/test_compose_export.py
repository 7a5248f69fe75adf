"""`ops export compose`: the stack's containers as a compose file, secrets never written out."""

from __future__ import annotations

import json

import yaml

from ops.cli import main


def test_workshop_exports_its_enabled_services_without_secrets(capsys, ops_home):
    assert main(["export", "compose", "workshop"]) == 0
    text = capsys.readouterr().out
    doc = yaml.safe_load(text)
    assert set(doc["services"]) == {"open-webui", "chainlit-rag", "webgpu-demo"}
    owui = doc["services"]["open-webui"]
    assert owui["image"] == "ghcr.io/open-webui/open-webui:v0.12.4"
    assert owui["ports"] == ["127.0.0.1:3000:8080/tcp"]
    assert owui["volumes"] == ["ops-workshop-open-webui-data:/app/backend/data"]
    assert owui["environment"]["OPENAI_API_BASE_URL"] == "http://host.docker.internal:8000/v1"
    assert owui["environment"]["OPENAI_API_KEY"] == "${OPEN_WEBUI_OPENAI_API_KEY}"
    assert owui["environment"]["ENABLE_PERSISTENT_CONFIG"] == "false"
    assert doc["volumes"]["ops-workshop-open-webui-data"] == {"name": "ops-workshop-open-webui-data"}
    # The same hardening and limits as `ops up` gives the containers.
    assert owui["cap_drop"] == ["ALL"] and "cap_add" not in owui
    assert owui["security_opt"] == ["no-new-privileges:true"]
    assert owui["mem_limit"] == owui["memswap_limit"] == 4 * 1024**3 and owui["pids_limit"] == 1024
    assert owui["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
    secrets = json.loads((ops_home / "stacks" / "workshop" / "secrets.json").read_text())
    for name, value in secrets.items():
        if name != "open-webui-admin-email":  # an address, not a secret: Open WebUI needs it in plain text
            assert value not in text, name


def test_export_to_a_file(tmp_path, capsys):
    out = tmp_path / "compose.yaml"
    assert main(["export", "compose", "offline", "-o", str(out)]) == 0
    assert set(yaml.safe_load(out.read_text())["services"]) == {"open-webui"}
