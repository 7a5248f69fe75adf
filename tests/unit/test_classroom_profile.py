"""The classroom's profile fields reach what they drive: participants.count/prefix name the roster, and
gateway.sharing's policy, per_caller, slots and queue reach the model host's gateway (and restart it)."""

from __future__ import annotations

import pytest

from ops import participants, profiles
from ops.errors import ProfileError
from ops.gateway.sharing import Sharing
from ops.host.config import HostConfig
from ops.plan import resolve
from ops.profiles.classroom import SharingSpec
from ops.state import StackState


def plan_of(tmp_path, extra: str, name: str = "room"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nmodels:\n  tiny: {{path: bundled:tiny-fp32}}\n{extra}")
    return resolve(profiles.load_path(path), ask_catalog=False)


def test_count_and_prefix_name_the_roster(tmp_path):
    plan = plan_of(tmp_path, "participants: {count: 3, prefix: team}\n")
    state = StackState.for_stack(plan.name).ensure()
    assert participants.roster(plan, state) == ("team01", "team02", "team03")
    assert participants.ensure(plan, state) == ("team01", "team02", "team03")
    assert participants.with_secrets(state) == {"team01", "team02", "team03"}
    assert plan_of(tmp_path, "participants: {count: 2}\n").loaded.profile.participants.roster == (
        "p01",
        "p02",
    )
    wide = plan_of(tmp_path, "participants: {count: 100}\n").loaded.profile.participants.roster
    assert wide[0] == "p001" and wide[-1] == "p100" and len(set(wide)) == 100


@pytest.mark.parametrize(
    "body, message",
    [
        ("{names: [ann], count: 2}", "either `names:`"),
        ("{}", "either `names:`"),
        ("{names: [ann, ann]}", "listed twice"),
        ("{count: 2, prefix: 'Team 1'}", "not a valid prefix"),
        ("{count: 0}", "count"),
        ("{names: [ann], tokens_per_hour: 0}", "tokens_per_hour"),
    ],
)
def test_a_participants_section_that_cannot_be_is_refused_in_one_line(tmp_path, body, message):
    with pytest.raises(ProfileError) as caught:
        plan_of(tmp_path, f"participants: {body}\n")
    assert message in str(caught.value) and "\n" not in caught.value.message


def test_the_sharing_settings_reach_the_hosts_gateway_and_a_change_restarts_it(tmp_path):
    default = HostConfig.from_plan(plan_of(tmp_path, ""), ["127.0.0.1"])
    sharing = "gateway: {sharing: {policy: fifo, per_caller: 3, slots: 5, queue: 7}}\n"
    config = HostConfig.from_plan(plan_of(tmp_path, sharing), ["127.0.0.1"])
    spec = config.gateway.sharing
    assert spec == SharingSpec(policy="fifo", per_caller=3, slots=5, queue=7) != default.gateway.sharing
    # What the host hands the gateway (ops.host.server: GatewayConfig(sharing=config.gateway.sharing)).
    assert HostConfig.from_json(config.to_json()).gateway.sharing == spec
    assert config.fingerprint() != default.fingerprint()
    pool = Sharing(spec, lambda model: 32).pool("tiny")
    assert (pool.slots, pool.spec.per_caller, pool.spec.queue, pool.spec.policy) == (5, 3, 7, "fifo")
