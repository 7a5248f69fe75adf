"""Open WebUI's ordinary users, made by its admin through its API (the kind's ``accounts`` hook).

The routes are Open WebUI 0.12's: ``GET /api/v1/users/all`` lists every user, ``POST
/api/v1/auths/add`` makes one (``{name, email, password, role}``), ``POST /api/v1/users/{id}/update``
sets a password (and signs the user's sessions out), ``DELETE /api/v1/users/{id}`` deletes the user
with their chats. Open WebUI hashes each password with bcrypt in a thread of its own: a few
accounts are made at once (:data:`AT_ONCE`). Measured on 2 cores, 30 accounts: 11.4 s one at a
time, 9.4 s two, 6.9 s four, 6.8 s eight.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence

import httpx

from ops.errors import OpsError
from ops.secrets import Secret
from ops.services import Account, StackContext, openwebui

#: Accounts made at once (more gain nothing on 2 cores; see above).
AT_ONCE = 4
TIMEOUT = 60.0


class OpenWebUIAccounts:
    """Participants' accounts in Open WebUI, role ``user``."""

    sign_in_path = "/auth"

    def answers(self, base_url: str, timeout: float = 5) -> bool:
        """True when Open WebUI's ``/health`` answers."""
        try:
            return httpx.get(f"{base_url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def existing(self, ctx: StackContext, base_url: str) -> dict[str, str]:
        """Every user's e-mail -> id (the admin's too)."""
        response = self._call(ctx, base_url, "GET", "/api/v1/users/all")
        users = response.json().get("users") or []
        return {u["email"].lower(): u["id"] for u in users if isinstance(u, dict) and u.get("email")}

    def create(self, ctx: StackContext, base_url: str, accounts: Sequence[Account]) -> None:
        """Make each account with role ``user``; an e-mail Open WebUI already has counts as made."""
        headers = self._headers(ctx, base_url)

        def one(account: Account) -> None:
            body = {
                "name": account.name,
                "email": account.email,
                "password": account.password.reveal(),
                "role": "user",
            }
            response = self._send(base_url, "POST", "/api/v1/auths/add", headers, json=body)
            taken = response.status_code == 400 and "already" in response.text.lower()
            if response.status_code != 200 and not taken:
                raise _refused(f"making the account of {account.name}", response)

        with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
            for done in [pool.submit(one, account) for account in accounts]:
                done.result()

    def set_password(self, ctx: StackContext, base_url: str, account_id: str, password: Secret) -> None:
        """Set the user's password; Open WebUI signs their open sessions out."""
        self._call(
            ctx, base_url, "POST", f"/api/v1/users/{account_id}/update", json={"password": password.reveal()}
        )

    def delete(self, ctx: StackContext, base_url: str, account_id: str) -> None:
        """Delete the user and their chats."""
        self._call(ctx, base_url, "DELETE", f"/api/v1/users/{account_id}")

    def _headers(self, ctx: StackContext, base_url: str) -> dict[str, str]:
        email, password = openwebui.admin_credentials(ctx)
        try:
            token = openwebui.session(base_url, ctx.secrets, email, password, service=ctx.service)
        except httpx.HTTPError as exc:
            raise _unreachable(base_url, exc) from None
        return {"authorization": f"Bearer {token}"}

    def _call(self, ctx: StackContext, base_url: str, method: str, path: str, **kwargs) -> httpx.Response:
        response = self._send(base_url, method, path, self._headers(ctx, base_url), **kwargs)
        if response.status_code != 200:
            raise _refused(f"{method} {path}", response)
        return response

    @staticmethod
    def _send(base_url: str, method: str, path: str, headers: dict[str, str], **kwargs) -> httpx.Response:
        try:
            return httpx.request(method, f"{base_url}{path}", headers=headers, timeout=TIMEOUT, **kwargs)
        except httpx.HTTPError as exc:
            raise _unreachable(base_url, exc) from None


def _unreachable(base_url: str, exc: Exception) -> OpsError:
    return OpsError(
        f"Open WebUI does not answer at {base_url} ({type(exc).__name__})",
        hint="start the stack with `ops up PROFILE`, then run this again",
    )


def _refused(what: str, response: httpx.Response) -> OpsError:
    try:
        detail = response.json().get("detail") or response.text[:160]
    except ValueError:
        detail = response.text[:160]
    return OpsError(
        f"Open WebUI refused {what} (HTTP {response.status_code}: {detail})",
        hint=f"see `ops logs PROFILE {openwebui.KIND}`",
    )


ACCOUNTS = OpenWebUIAccounts()
