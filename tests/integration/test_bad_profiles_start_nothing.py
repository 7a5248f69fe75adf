"""A bad profile starts nothing: no container, network or volume, no model host, no state."""

from __future__ import annotations

import pytest

from ops.cli import main
from ops.labels import STACK as LABEL_STACK
from tests.unit.test_profile_errors import CASES


@pytest.fixture
def model_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "genai_config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("text", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_ops_up_with_bad_profile_creates_no_docker_object(
    docker_client, tmp_path, model_folder, ops_home, text, capsys
):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    selector = {"label": f"{LABEL_STACK}=demo"}
    assert main(["up", str(path)]) == 2
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    assert not ops_home.exists()
