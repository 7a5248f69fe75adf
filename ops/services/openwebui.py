"""Open WebUI: wired to the gateway, with a headless admin, and checked end to end through its own API."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import httpx

from ops.errors import DockerError, OpsError
from ops.secrets import Secret, SecretStore

KIND = RECIPE = "open-webui"
ADMIN_EMAIL = "open-webui-admin-email"
ADMIN_PASSWORD = "open-webui-admin-password"
SECRET_KEY = "open-webui-secret-key"
#: The admin's last session token, reused while Open WebUI accepts it (see :func:`session`).
SESSION_TOKEN = "open-webui-session-token"
#: Open WebUI's background generations, each off by default (see :func:`environment`).
BACKGROUND_TASKS = (
    "ENABLE_TITLE_GENERATION",
    "ENABLE_TAGS_GENERATION",
    "ENABLE_FOLLOW_UP_GENERATION",
    "ENABLE_AUTOCOMPLETE_GENERATION",
)


#: Errors Open WebUI logs in normal operation: offline it cannot fetch its default embedding
#: model; chat works without it (FACTS.md).
BENIGN_LOG = re.compile(
    r"snapshot|SentenceTransformer|embedding|huggingface|outgoing traffic has been disabled", re.I
)

TORCH_VERSION = "2.13.0"
# Debian 12's python3, which the recipes install on the ops base image.
PYTHON_TAG = "cp311"
_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "x86_64": "x86_64", "aarch64": "aarch64"}


def build_files(*, arch: str | None = None, env: dict[str, str] | None = None) -> dict[str, Path]:
    """The recipe's host files: a CPU build of torch (context path -> wheel).

    From PyPI pip would pick the CUDA build and several GB of nvidia-* wheels. The wheel is looked
    for where the host's pip looks (:func:`ops.images.pipconf.pip_wheel_dirs`). Raises
    :class:`DockerError` when it is not there.
    """
    from ops.images.pipconf import pip_wheel_dirs

    machine = _ARCH.get(arch or platform.machine(), arch or platform.machine())
    pattern = f"torch-{TORCH_VERSION}+cpu-{PYTHON_TAG}-{PYTHON_TAG}-*linux*_{machine}.whl"
    dirs = pip_wheel_dirs(env)
    for folder in dirs:
        for wheel in sorted(folder.glob(pattern), reverse=True):
            return {f"wheels/{wheel.name}": wheel}
    where = ", ".join(str(d) for d in dirs) or "no find-links or file:// index configured"
    raise DockerError(
        f"no CPU torch {TORCH_VERSION} wheel for Python 3.11 on {machine} on this machine (looked in {where})",
        hint=(
            f"Download {pattern.replace('*linux*', 'manylinux_2_28')} from https://download.pytorch.org/whl/cpu "
            "into a folder and add it to pip's find-links (PIP_FIND_LINKS or pip.conf), "
            "or set image_policy: pull where ghcr.io is reachable."
        ),
    )


def admin_credentials(ctx) -> tuple[str, Secret]:
    """The generated admin's email and password (created once, kept in the stack's secrets store)."""
    email = ctx.secrets.get_or_create(ADMIN_EMAIL, lambda: f"admin@{ctx.stack}.ops.local").reveal()
    return email, ctx.secrets.get_or_create(ADMIN_PASSWORD)


def credentials(ctx) -> dict[str, str | Secret]:
    """The admin's sign-in, for ``ops credentials``."""
    email, password = admin_credentials(ctx)
    return {"e-mail": email, "password": password}


def admin_exists(ctx) -> bool:
    """True once the generated admin has signed in to this service (recorded in the secrets store)."""
    from ops.stack import setup_done

    return bool(ctx.service) and ctx.secrets.get(setup_done(ctx.service)) is not None


def environment(ctx) -> dict[str, str | Secret]:
    """Environment for the Open WebUI container: the gateway as its only connection, auth on, env wins.

    Open WebUI creates its admin from ``WEBUI_ADMIN_*`` at a start with no user. Once that admin
    has signed in (:func:`session` records it), the environment no longer carries the password:
    Docker users can read every container's environment. The change replaces the container once.
    """
    email, password = admin_credentials(ctx)
    admin: dict[str, str | Secret] = (
        {}
        if admin_exists(ctx)
        else {
            "WEBUI_ADMIN_EMAIL": email,
            "WEBUI_ADMIN_PASSWORD": password,
            "WEBUI_ADMIN_NAME": "Workshop Admin",
        }
    )
    return {
        "OPENAI_API_BASE_URL": ctx.gateway_url,
        "OPENAI_API_KEY": ctx.gateway_key,
        "ENABLE_OPENAI_API": "true",
        "ENABLE_OLLAMA_API": "false",
        "WEBUI_AUTH": "true",
        "WEBUI_SECRET_KEY": ctx.secrets.get_or_create(SECRET_KEY),
        **admin,
        "ENABLE_SIGNUP": "false",
        # Participants (role user, made by `ops participants`) see every model the gateway lists, as
        # the admin does: the gateway, not Open WebUI, decides who may use what.
        "BYPASS_MODEL_ACCESS_CONTROL": "true",
        # Open WebUI names the user (X-OpenWebUI-User-*) on each request to the gateway, which counts
        # and shares the models by participant when the request comes with Open WebUI's own key.
        "ENABLE_FORWARD_USER_INFO_HEADERS": "true",
        # ops owns these settings: values saved in Open WebUI's database must not override them.
        "ENABLE_PERSISTENT_CONFIG": "false",
        # Private and offline by default: no model hub downloads, no update checks.
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "ANONYMIZED_TELEMETRY": "false",
        "DO_NOT_TRACK": "true",
        "SCARF_NO_ANALYTICS": "true",
        # Open WebUI asks the chat model for follow-up questions, a title and tags after every answer
        # (and, where a user turns it on, for autocomplete while typing): 4 chat completions per
        # message instead of 1, each up to `default_max_tokens`, competing with the next answers on
        # the same cores. Measured in Chromium on 2 cores with SmolLM2-135M (`ops
        # bench-openwebui`), off: first text p50 1.2-1.6 s -> 0.5-0.7 s, complete answer p50
        # 12-16 s -> 6 s. A small task model (TASK_MODEL_EXTERNAL) would still share those cores, and
        # SmolLM2-135M's follow-ups were not the JSON Open WebUI parses. Chats are titled with their
        # first message instead. A profile's `environment` turns any of them back on (the profile wins).
        **dict.fromkeys(BACKGROUND_TASKS, "false"),
        # Exposed to the room: the address people use is the one Open WebUI puts in links it makes.
        **({"WEBUI_URL": ctx.public_url} if ctx.public_url else {}),
    }


def sign_in(base_url: str, email: str, password: Secret, timeout: float = 30) -> str:
    """Sign in through Open WebUI's API; return the session token."""
    response = httpx.post(
        f"{base_url}/api/v1/auths/signin",
        json={"email": email, "password": password.reveal()},
        timeout=timeout,
    )
    if response.status_code == 429:
        raise OpsError(
            "Open WebUI refused the generated admin's sign-in: too many sign-ins in 3 minutes (HTTP 429)",
            hint="wait 3 minutes; something else is signing in as the admin over and over",
        )
    if response.status_code != 200:
        raise OpsError(
            f"Open WebUI refused the generated admin's sign-in (HTTP {response.status_code})",
            hint="the data volume may hold another admin: `ops down PROFILE --volumes` starts it fresh",
        )
    return response.json()["token"]


def session(
    base_url: str, secrets: SecretStore, email: str, password: Secret, timeout: float = 30, service: str = ""
) -> str:
    """A session token of the generated admin: the stored one while Open WebUI accepts it, else a new
    sign-in, stored for the next run.

    Open WebUI allows 15 sign-ins per account in 3 minutes. Signing in afresh on every ``ops up``,
    ``ops doctor`` and ``ops smoke`` locked the admin out (HTTP 429) after a few runs in a row.

    With ``service``, a sign-in that works records that its admin exists (the next ``ops up`` leaves
    the password out of its environment); one that is refused forgets it (the next ``ops up`` passes
    the password again, in case the data volume, and the admin with it, is gone).
    """
    from ops.stack import setup_done

    done = setup_done(service) if service else ""
    stored = secrets.get(SESSION_TOKEN)
    if stored is not None:
        try:
            me = httpx.get(
                f"{base_url}/api/v1/auths/",
                headers={"authorization": f"Bearer {stored.reveal()}"},
                timeout=timeout,
            )
        except httpx.HTTPError:
            me = None  # let the sign-in below say what is wrong
        if me is not None and me.status_code == 200:
            if done and secrets.get(done) is None:
                secrets.set(done, "1")
            return stored.reveal()
    try:
        token = sign_in(base_url, email, password, timeout)
    except OpsError as exc:
        # Refused (not rate-limited): the admin may be gone with the data volume.
        if done and "HTTP 429" not in exc.message and secrets.delete(done):
            exc.hint = (exc.hint or "") + f"; `ops up` passes the admin's password to {service} again"
        raise
    secrets.set(SESSION_TOKEN, token)
    if done:
        secrets.set(done, "1")
    return token


def chain(ctx, base_url: str, timeout: float):
    """Sign in, see the profile's models, and get one chat answer through Open WebUI."""
    from ops.services import ChainReport

    email, password = admin_credentials(ctx)
    token = session(base_url, ctx.secrets, email, password, service=ctx.service)
    headers = {"authorization": f"Bearer {token}"}
    listed = httpx.get(f"{base_url}/api/models", headers=headers, timeout=timeout)
    ids = tuple(m.get("id") for m in listed.json().get("data", [])) if listed.status_code == 200 else ()
    missing = [m for m in ctx.models if m not in ids]
    if missing:
        raise OpsError(
            f"Open WebUI does not list the model(s) {', '.join(missing)} (it lists: {', '.join(ids) or 'none'})",
            hint="check the gateway (`ops host status`) and Open WebUI's connection settings (`ops doctor`)",
        )
    body = {"model": ctx.models[0], "messages": [{"role": "user", "content": "Say hello."}], "stream": False}
    answer = httpx.post(f"{base_url}/api/chat/completions", json=body, headers=headers, timeout=timeout)
    text = ""
    if answer.status_code == 200:
        text = ((answer.json().get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    if not text:
        raise OpsError(
            f"a chat through Open WebUI returned no text (HTTP {answer.status_code}: {answer.text[:160]})",
            hint=f"see `ops logs PROFILE {KIND}` and the host log",
        )
    return ChainReport(ids, text)
