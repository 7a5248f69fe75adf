"""The Open WebUI service kind's own API client: sign-in errors users can act on."""

from __future__ import annotations

import httpx
import pytest

from ops.errors import OpsError
from ops.secrets import Secret
from ops.services import openwebui


def test_open_webui_rate_limiting_sign_ins_is_named_with_its_wait(monkeypatch):
    """Open WebUI answers 429 after 15 sign-ins in 3 minutes: the error says so instead of blaming the volume."""
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(429, json={"detail": "Too many"}))
    with pytest.raises(OpsError) as caught:
        openwebui.sign_in("http://127.0.0.1:9", "admin@x.ops.local", Secret("pw"))
    assert caught.value.message.endswith("too many sign-ins in 3 minutes (HTTP 429)")
    assert caught.value.hint.startswith("wait 3 minutes")
