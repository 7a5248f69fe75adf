"""The RAG app's sign-in by proxy header and its origin rule (stacks/chainlit-rag/rag/auth.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"
sys.path.insert(0, str(RECIPE))

from rag.auth import ProxyAuth, allowed_origins, origin_allowed  # noqa: E402

SECRET = "s" * 24


def test_header_sign_in_needs_the_proxys_secret():
    with pytest.raises(ValueError, match="RAG_PROXY_SECRET"):
        ProxyAuth.from_env({"RAG_AUTH": "header"})
    with pytest.raises(ValueError, match="at least 16"):
        ProxyAuth.from_env({"RAG_PROXY_SECRET": "short"})


def test_a_forwarded_user_counts_only_with_the_shared_secret():
    proxy = ProxyAuth.from_env({"RAG_PROXY_SECRET": SECRET})
    # Anything that reaches the port can send the user header: alone, it signs nobody in.
    assert proxy.user({"X-Forwarded-User": "admin"}) is None
    assert proxy.user({"X-Forwarded-User": "admin", "X-Proxy-Secret": "wrong"}) is None
    assert proxy.user({"X-Forwarded-User": "admin", "X-Proxy-Secret": ""}) is None
    assert proxy.user({"x-forwarded-user": "ada", "x-proxy-secret": SECRET}) == "ada"
    assert proxy.user({"X-Proxy-Secret": SECRET}) is None  # the proxy named nobody


def test_header_names_are_configurable():
    proxy = ProxyAuth.from_env(
        {"RAG_PROXY_SECRET": SECRET, "RAG_AUTH_HEADER": "Remote-User", "RAG_PROXY_SECRET_HEADER": "X-Auth"}
    )
    assert proxy.user({"Remote-User": "ada", "X-Auth": SECRET}) == "ada"
    assert proxy.user({"X-Forwarded-User": "ada", "X-Proxy-Secret": SECRET}) is None


def test_only_the_apps_own_origin_and_the_listed_ones():
    assert origin_allowed(None, "127.0.0.1:8501")  # not a browser's cross-origin request
    assert origin_allowed("http://127.0.0.1:8501", "127.0.0.1:8501")
    assert not origin_allowed("http://evil.example", "127.0.0.1:8501")
    assert not origin_allowed("http://127.0.0.1:3000", "127.0.0.1:8501")  # another app on this machine
    extra = allowed_origins({"RAG_ALLOWED_ORIGINS": "https://rag.example.org/, http://x:1"})
    assert extra == ("https://rag.example.org", "http://x:1")
    assert origin_allowed("https://rag.example.org", "127.0.0.1:8501", extra)
    with pytest.raises(ValueError, match="may not be"):
        allowed_origins({"RAG_ALLOWED_ORIGINS": "*"})


def test_the_shipped_config_allows_no_other_origin():
    import tomllib

    config = tomllib.loads((RECIPE / ".chainlit" / "config.toml").read_text())
    assert config["project"]["allow_origins"] == []
