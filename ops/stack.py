"""A stack is a running profile. This module decides what ``ops up`` will use before it starts anything.

Every Docker object a stack creates carries the label ``ops.stack=<name>`` (see ``LABEL_STACK``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ops.errors import ModelError
from ops.models.catalog import check_catalog
from ops.models.recipes import is_built
from ops.profiles import LoadedProfile
from ops.settings import Settings
from ops.state import StackState

LABEL_STACK = "ops.stack"
LABEL_SERVICE = "ops.service"
LABEL_SPEC_HASH = "ops.spec-hash"

#: Secrets every stack has; services add their own.
GATEWAY_KEY = "gateway-key"


@dataclass(frozen=True)
class ModelPlan:
    """One model of the profile and whether this run will serve it."""

    alias: str
    source: str  # "catalog", "local", "recipe" or "remote"
    where: str  # the catalog alias, the local folder (a recipe's in the model cache) or the URL
    use: bool
    reason: str


def plan_models(loaded: LoadedProfile, settings: Settings | None = None) -> list[ModelPlan]:
    """Decide which models this run serves; catalog models are skipped (if optional) when it is offline.

    The catalog is asked once, with ``OPS_CATALOG_TIMEOUT`` (default 3 s), and only when the
    profile has catalog models.
    """
    settings = settings or Settings.from_env()
    specs = loaded.profile.models
    reach = None
    if any(spec.catalog for spec in specs.values()):
        reach = check_catalog(settings.catalog_timeout, settings.catalog_url)
    plans = []
    for alias, spec in specs.items():
        if spec.path:
            plans.append(ModelPlan(alias, "local", str(loaded.model_dirs[alias]), True, "local folder"))
            continue
        if spec.recipe:
            folder = loaded.model_dirs[alias]
            state = "built" if is_built(folder) else "to build"
            plans.append(ModelPlan(alias, "recipe", str(folder), True, f"recipe {spec.recipe} ({state})"))
            continue
        if spec.url:
            plans.append(ModelPlan(alias, "remote", spec.url, True, "OpenAI-compatible server"))
            continue
        assert reach is not None and spec.catalog is not None
        if reach.reachable:
            plans.append(ModelPlan(alias, "catalog", spec.catalog, True, reach.reason))
        elif spec.optional:
            plans.append(ModelPlan(alias, "catalog", spec.catalog, False, f"skipped: {reach.reason}"))
        else:
            raise ModelError(
                f"model {alias!r} needs the Foundry catalog: {reach.reason}",
                hint="connect to the network, set `optional: true` on the model, or use the offline profile",
            )
    if not any(plan.use for plan in plans):
        raise ModelError(
            f"no model of profile {loaded.name!r} can be served: {plans[0].reason}",
            hint="add a local model (e.g. `path: bundled:tiny-fp32`) or use the offline profile",
        )
    return plans


def prepare_state(stack: str, settings: Settings | None = None) -> StackState:
    """Create the stack's state folder and the secrets every stack needs (once; reused after)."""
    state = StackState.for_stack(stack, settings).ensure()
    state.secrets.get_or_create(GATEWAY_KEY)
    return state
