"""The ``models`` group: Foundry Local loads, its cache, the model folders and registrations, the
catalog, and the state of each model in the running host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable

from ops.doctor import BaseCheck, Outcome, fail, ok, profile_of, register, skipped, warn
from ops.doctor.context import DoctorContext, nearest_existing

#: The child that loads the runtime is killed after this long.
RUNTIME_TIMEOUT = 60.0
#: The catalog is asked for at most this long, whatever OPS_CATALOG_TIMEOUT says.
CATALOG_TIMEOUT = 5.0


def foundry(ctx: DoctorContext) -> dict:
    """What the Foundry Local runtime says, from a child process (see ``foundry_probe``)."""

    def ask() -> dict:
        home = ctx.settings.home
        command = [
            sys.executable,
            "-m",
            "ops.models.foundry_probe",
            str(home / "foundry"),
            str(home / "logs"),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=RUNTIME_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {
                "ok": False,
                "error": f"the runtime did not load within {RUNTIME_TIMEOUT:g} s",
                "hint": "",
            }
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {
                "ok": False,
                "error": f"the runtime crashed (exit code {done.returncode}): {tail}",
                "hint": "",
            }
        return json.loads(lines[-1])

    return ctx.once("foundry", ask)


@register
class RuntimeCheck(BaseCheck):
    """The Foundry Local runtime loads (in a child process) on this machine's model cache."""

    name = "models.runtime"
    group = "models"
    timeout = RUNTIME_TIMEOUT + 10

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.models.support import foundry_support

        support = foundry_support()
        if not support.available:
            if support.no_build:
                return skipped(f"{support.reason} (host.platform says whether this profile needs it)")
            return fail(support.reason, support.hint)
        found = foundry(ctx)
        cache = ctx.settings.home / "foundry"
        if not found["ok"]:
            return fail(
                f"Foundry Local does not load: {found['error']}",
                found.get("hint")
                or f"check that {cache} is writable; reinstall with `{sys.executable} -m pip install "
                "--force-reinstall foundry-local-sdk==2.2.1`",
            )
        return ok(
            f"foundry-local-sdk {found['version']} loads in {found['seconds']:.2f} s; "
            f"{len(found['registered'])} local model(s) registered in {cache}"
        )


@register
class CacheCheck(BaseCheck):
    """The model cache folder is writable (downloads and registrations go there)."""

    name = "models.cache"
    group = "models"

    def run(self, ctx: DoctorContext) -> Outcome:
        cache = ctx.settings.home / "foundry"
        where = nearest_existing(cache)
        fix = f"make {where} writable by this user (`chown -R $USER {where}`), or set OPS_HOME elsewhere"
        if not os.access(where, os.W_OK | os.X_OK):
            return fail(f"{where} is not writable by this user", fix)
        try:
            with tempfile.NamedTemporaryFile(dir=where, prefix=".ops-doctor-"):
                pass
        except OSError as exc:
            return fail(f"cannot write in {where}: {exc.strerror}", fix)
        if where != cache:
            return ok(f"{cache} does not exist yet; {where} is writable, so it can be made")
        return ok(f"{cache} is writable")


@register
class FilesCheck(BaseCheck):
    """Each local model's folder exists and holds an ONNX Runtime GenAI model; recipe models are built."""

    name = "models.files"
    group = "models"
    depends_on = ("host.profile",)

    def run(self, ctx: DoctorContext) -> Outcome:
        loaded = profile_of(ctx)
        dirs = loaded.model_dirs
        if not dirs:
            return ok("the profile has no local model folders")
        problems = []
        specs = loaded.profile.models
        unbuilt = [a for a, f in dirs.items() if specs[a].recipe and not (f / "genai_config.json").is_file()]
        if unbuilt:
            recipes = ", ".join(
                f"{a} ({specs[a].recipe}, {specs[a].precision or 'its default precision'})" for a in unbuilt
            )
            return fail(
                f"not built yet: {recipes}",
                f"`ops model build --profile {ctx.profile_arg}` builds them once (a package index must answer); "
                f"`ops up` does it too",
            )
        for alias, folder in dirs.items():
            if alias in ctx.folder_problems or not (folder / "genai_config.json").is_file():
                what = "does not exist" if not folder.exists() else "has no genai_config.json"
                problems.append((alias, f"model {alias}: folder {folder} {what}"))
            elif not any(folder.glob("*.onnx")):
                problems.append((alias, f"model {alias}: folder {folder} has no .onnx file"))
        if problems:
            host = ctx.host()
            still = (
                " (the running host still has it in memory; its next start will fail)" if host.running else ""
            )
            aliases = ", ".join(f"models.{a}.path" for a, _ in problems)
            return fail(
                "; ".join(p for _, p in problems) + still,
                f"restore the folder, or point `{aliases}` at an ONNX Runtime GenAI model folder; "
                f"then `ops restart {ctx.profile_arg} host`",
            )
        return ok(", ".join(f"{a}: {f}" for a, f in dirs.items()))


@register
class RegisteredCheck(BaseCheck):
    """Each local model is registered with Foundry Local (``ops up`` registers it the first time)."""

    name = "models.registered"
    group = "models"
    depends_on = ("models.runtime", "models.files")

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.models.foundry import local_model_id

        ids = {m["id"] for m in foundry(ctx)["registered"]}
        loaded = profile_of(ctx)
        dirs, specs = loaded.model_dirs, loaded.profile.models
        # Only Foundry's web service serves registered models; the batching engine serves the folder.
        wanted = {
            alias: local_model_id(alias, folder)
            for alias, folder in dirs.items()
            if specs[alias].provider == "foundry"
        }
        if not wanted:
            batching = [a for a in dirs if specs[a].provider == "batching"]
            if batching:
                return ok(
                    f"{', '.join(batching)}: served by the batching engine from the folder, nothing to register"
                )
            return ok("the profile has no local models to register")
        missing = [alias for alias, model_id in wanted.items() if model_id not in ids]
        if missing:
            return warn(
                f"not registered yet: {', '.join(missing)}",
                f"`ops up {ctx.profile_arg}` registers them (or `ops model add FOLDER --alias NAME`)",
            )
        return ok(", ".join(f"{a} as {i}" for a, i in wanted.items()))


@register
class CatalogCheck(BaseCheck):
    """The Foundry catalog answers (short timeout); fails only when a required model needs it."""

    name = "models.catalog"
    group = "models"

    def run(self, ctx: DoctorContext) -> Outcome:
        from ops.models.catalog import check_catalog

        timeout = min(ctx.settings.catalog_timeout, CATALOG_TIMEOUT)
        reach = check_catalog(timeout, ctx.settings.catalog_url)
        specs = ctx.loaded.profile.models if ctx.loaded else {}
        wanted = [a for a, s in specs.items() if s.catalog]
        if reach.reachable:
            return ok(reach.reason + (f"; it serves {', '.join(wanted)}" if wanted else ""))
        required = [a for a in wanted if not specs[a].optional]
        if required:
            return fail(
                f"{reach.reason}; {', '.join(required)} need(s) it",
                "connect to the network, set `optional: true` on the model, or use the offline profile",
            )
        if wanted:
            return warn(
                f"{reach.reason}; {', '.join(wanted)} skipped (optional)",
                f"connect to the network, then `ops up {ctx.profile_arg}` adds them",
            )
        return ok(f"{reach.reason}; not needed: the profile has no catalog models")


@register
class LoadedCheck(BaseCheck):
    """Each of the profile's models is loaded and ready in the running host."""

    name = "models.loaded"
    group = "models"
    depends_on = ("gateway.health",)

    def run(self, ctx: DoctorContext) -> Outcome:
        health = ctx.host().health or {}
        states, details = health.get("models", {}), health.get("details", {})
        seen: list[str] = []
        fixes: list[str] = []
        worst: Callable[[str, str], Outcome] | None = None  # warn or fail, once something is not ok
        profile = ctx.profile_arg
        for alias, spec in profile_of(ctx).profile.models.items():
            state = states.get(alias)
            why = details.get(alias, "")
            if state == "ready" or state == "unavailable":
                seen.append(f"{alias} {state}" + (f" ({why})" if why and state != "ready" else ""))
            elif state is None and spec.catalog and spec.optional:
                seen.append(f"{alias} not served (skipped when the host started)")
            elif state == "failed":
                seen.append(f"{alias} failed: {why}")
                fixes.append(f"see the host log {ctx.state().log_file}; `ops restart {profile} host` retries")
                worst = fail
            elif state in ("loading", "unloaded"):
                seen.append(f"{alias} {state}" + (f" ({why})" if why else ""))
                fixes.append(
                    f"`ops model load {alias} --profile {profile}`"
                    if state == "unloaded"
                    else "wait, then check again"
                )
                worst = worst if worst is fail else warn
            else:
                seen.append(f"{alias} is not served by the host")
                fixes.append(f"the host runs another version of the profile: `ops restart {profile} host`")
                worst = fail
        return (
            ok("; ".join(seen)) if worst is None else worst("; ".join(seen), "; ".join(dict.fromkeys(fixes)))
        )
