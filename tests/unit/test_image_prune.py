"""What ``ops`` may remove to give disk back: its stages' labels, the selection rules, the removal
(fake image lists and a fake client: no Docker)."""

from __future__ import annotations

import docker.errors
import pytest

from ops import labels
from ops.cli import main
from ops.doctor import Status
from ops.doctor.context import DoctorContext
from ops.doctor.images import ReclaimableCheck
from ops.images import build, cleanup
from ops.images import prune as pruning
from ops.images.prune import ImageRecord, Reclaimable, Survey, select
from ops.images.stages import label_stages, stage_end_commands
from ops.paths import shipped

BASE = {labels.MANAGED: "true", "ops.base.source": "debootstrap"}
STAGE = {**BASE, labels.RECIPE: "open-webui", labels.STAGE: "builder"}
BUILD = {**BASE, labels.RECIPE: "open-webui", labels.RECIPE_HASH: "abc", labels.STAGE: "1"}
GB = 10**9


def image(ident, *tags, labels=None, size=GB, shared=0, containers=0, created_by=None):
    return ImageRecord(f"sha256:{ident}", tuple(tags), labels or {}, size, shared, containers, created_by)


# --- labelling every stage -------------------------------------------------------------------


def test_every_stage_gets_the_recipe_and_its_name_or_index():
    text = "ARG BASE\nFROM ${BASE} AS builder\nRUN make\n\nfrom ${BASE}\nCOPY --from=builder /a /a\n"
    out = label_stages(text, "open-webui").splitlines()
    assert out == [
        "ARG BASE",
        "FROM ${BASE} AS builder",
        'LABEL ops.recipe="open-webui" ops.stage="builder"',
        "RUN make",
        "",
        "from ${BASE}",
        'LABEL ops.recipe="open-webui" ops.stage="1"',
        "COPY --from=builder /a /a",
    ]


def test_a_from_continued_on_the_next_line_is_labelled_after_its_end():
    text = "FROM ops-base:bookworm \\\n    AS build\nRUN true\n"
    assert label_stages(text, "r").splitlines()[2] == 'LABEL ops.recipe="r" ops.stage="build"'
    directive = "# escape=`\nFROM base `\n  AS b\nRUN x\n"
    assert label_stages(directive, "r").splitlines()[3] == 'LABEL ops.recipe="r" ops.stage="b"'


def test_a_line_starting_with_from_inside_another_instruction_is_not_a_stage():
    text = "FROM a\nRUN python -c \\\n  # a comment inside\nfrom x import y \\\n  && true\nFROM b"
    out = label_stages(text, "r").splitlines()
    assert out == [
        "FROM a",
        'LABEL ops.recipe="r" ops.stage="0"',
        "RUN python -c \\",
        "  # a comment inside",
        "from x import y \\",
        "  && true",
        "FROM b",
        'LABEL ops.recipe="r" ops.stage="1"',
    ]


@pytest.mark.parametrize("recipe", ["open-webui", "chainlit-rag", "webgpu-demo"])
def test_the_shipped_recipes_keep_every_line_and_gain_one_label_per_stage(recipe):
    text = (shipped("stacks") / recipe / "Dockerfile").read_text(encoding="utf-8")
    out = label_stages(text, recipe)
    stages = sum(1 for line in text.splitlines() if line.upper().startswith("FROM "))
    added = [line for line in out.splitlines() if line.startswith("LABEL ops.recipe=")]
    assert len(added) == stages >= 1
    assert [line for line in out.splitlines() if line not in added] == text.splitlines()


def test_the_daemon_gets_the_labelled_dockerfile_but_the_recipe_hash_is_the_recipes(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM a AS s\nRUN x\nFROM a\n")
    entries = build._context_entries(tmp_path, None, None, "Dockerfile")
    sent = {e.arcname: e for e in build._with_stage_labels(entries, "Dockerfile", tmp_path.name)}
    assert b'ops.stage="s"' in sent["Dockerfile"].data and sent["Dockerfile"].source is None
    assert sent["ca-bundle.crt"] == next(e for e in entries if e.arcname == "ca-bundle.crt")


def test_the_open_webui_builder_stage_ends_with_the_command_docker_recorded():
    text = (shipped("stacks") / "open-webui" / "Dockerfile").read_text(encoding="utf-8")
    # ContainerConfig.Cmd[-1] of the 2.9 GB leftover of an Open WebUI build (Docker 20.10).
    recorded = (
        '/opt/venv/bin/pip install -c /tmp/ops/constraints.txt "open-webui==${OPEN_WEBUI_VERSION}"  '
        "&& find /opt/venv -name __pycache__ -prune -exec rm -rf {} +"
    )
    assert stage_end_commands(text) == [" ".join(recorded.split())]
    assert stage_end_commands("FROM a\nRUN x\n") == []  # one stage: nothing left behind
    assert stage_end_commands('FROM a\nRUN ["x"]\nFROM b\n') == []  # exec form: no shell command


# --- what may go -----------------------------------------------------------------------------


def test_an_untagged_stage_image_goes_and_says_how_much_it_alone_holds():
    found = select([image("s1", labels=STAGE, size=3 * GB, shared=GB // 10)], set())
    assert found == [Reclaimable("sha256:s1", (), "open-webui", "builder", "stage", 3 * GB - GB // 10)]


def test_images_ops_did_not_make_are_never_chosen():
    foreign = [
        image("f1"),  # untagged, no labels
        image("f2", "someone/app:1", labels={"maintainer": "x"}),
        # built FROM ops-base by someone else: it inherits the base's labels only
        image("f3", labels=BASE, created_by="make"),
        image("f4", "mine:1", labels=BASE),
    ]
    assert select(foreign, set(), stage_commands={"make all": "r"}) == []


def test_an_unlabelled_leftover_of_a_recipe_stage_is_recognised_by_its_command():
    old = image("o1", labels=BASE, created_by="pip install  x \t&& find /opt")
    found = select([old], set(), stage_commands={"pip install x && find /opt": "open-webui"})
    assert [(f.reason, f.recipe, f.stage) for f in found] == [("stage", "open-webui", "(unlabelled)")]
    # with another label, or a tag, it is not that leftover
    other = image("o2", labels={**BASE, "x": "1"}, created_by="pip install x && find /opt")
    tagged = image("o3", "t:1", labels=BASE, created_by="pip install x && find /opt")
    assert select([other, tagged], set(), stage_commands={"pip install x && find /opt": "r"}) == []


def test_nothing_in_use_goes():
    images = [
        image("a", "ops-open-webui:local", labels=BUILD),  # a profile names its tag
        image("b", labels=STAGE),  # a profile names its id
        image("c", labels=STAGE, containers=1),  # a stopped container uses it
        image("d", "ops-base:bookworm", labels=BASE),
    ]
    assert select(images, {"ops-open-webui:local", "sha256:b", "ops-base:bookworm"}) == []


def test_a_tagged_build_no_profile_names_goes_only_when_every_profile_was_read():
    old = image("u", "ops-old:local", labels=BUILD)
    assert [f.reason for f in select([old], {"ops-open-webui:local"})] == ["unused-build"]
    assert select([old], set(), profiles_complete=False) == []
    # stage leftovers still go while a profile is unreadable: no profile can name an untagged image
    assert len(select([image("s", labels=STAGE)], set(), profiles_complete=False)) == 1


def test_an_untagged_build_was_replaced_by_a_newer_one():
    replaced = image("r", labels=BUILD)  # untagged; it has a stage label too, the build's says more
    assert [f.reason for f in select([replaced], set(), profiles_complete=False)] == ["replaced-build"]


def test_largest_first_and_shared_layers_not_counted():
    images = [image("small", labels=STAGE, size=GB, shared=GB), image("big", labels=STAGE, size=2 * GB)]
    assert [(f.id, f.bytes) for f in select(images, set())] == [("sha256:big", 2 * GB), ("sha256:small", 0)]
    assert ImageRecord("x", (), {}, 5, None).unique_size == 5
    assert Survey(tuple(select(images, set()))).bytes == 2 * GB


# --- removal ---------------------------------------------------------------------------------


class FakeImage:
    def __init__(self, ident, tags=(), labels=None):
        self.id, self.tags, self.labels = ident, list(tags), labels


class FakeImages:
    """Images by id and tag; removing by id refuses a tagged image, as the daemon does with several."""

    def __init__(self, *images, refuse=()):
        self.by_id = {i.id: i for i in images}
        self.refuse = set(refuse)
        self.removed: list[str] = []

    def get(self, ref):
        for item in self.by_id.values():
            if ref == item.id or ref in item.tags:
                return item
        raise docker.errors.ImageNotFound(ref)

    def remove(self, ref, force=False):
        assert force is False
        item = self.get(ref)
        if item.id in self.refuse:
            raise docker.errors.APIError("409", explanation="image is being used by stopped container 1a2b")
        if ref in item.tags:
            item.tags.remove(ref)
            self.removed.append(ref)
            if item.tags:
                return
        del self.by_id[item.id]
        self.removed.append(item.id)


class FakeClient:
    def __init__(self, images):
        self.images = images


def item(ident, *tags, reason="stage"):
    return Reclaimable(ident, tuple(tags), "r", None, reason, GB)


def test_prune_removes_what_was_chosen_and_reports_refusals():
    images = FakeImages(
        FakeImage("s1", labels=STAGE),
        FakeImage("u1", ["ops-old:local", "ops-old:2"], labels=BUILD),
        FakeImage("s2", labels=STAGE),
        FakeImage("s3", ["someone:tagged-it-meanwhile"], labels=STAGE),
        refuse={"s2"},
    )
    chosen = (
        item("s1"),
        item("u1", "ops-old:local", "ops-old:2", reason="unused-build"),
        item("s2"),
        item("s3"),
    )
    result = pruning.prune(FakeClient(images), Survey(chosen))
    assert [r.id for r in result.removed] == ["s1", "u1"] and result.bytes == 2 * GB
    assert [(k.id, why) for k, why in result.kept] == [
        ("s2", "image is being used by stopped container 1a2b"),
        ("s3", "it has been tagged meanwhile"),
    ]
    assert set(images.by_id) == {"s2", "s3"}


def test_after_a_build_only_untagged_labelled_stage_images_are_removed():
    images = FakeImages(
        FakeImage("stage", labels=STAGE),
        FakeImage("tagged", ["x:1"], labels=STAGE),
        FakeImage("foreign"),
    )
    removed = cleanup.remove_stage_images(FakeClient(images), ["stage", "tagged", "foreign", "gone", "stage"])
    assert removed == ["stage"] and set(images.by_id) == {"tagged", "foreign"}


# --- the command and the doctor check --------------------------------------------------------

SURVEY = Survey((Reclaimable("sha256:" + "ab" * 32, (), "open-webui", "builder", "stage", 2_900_000_000),))


@pytest.fixture
def fake_survey(monkeypatch):
    removed = []
    monkeypatch.setattr("ops.docker_engine.connect", lambda **_kw: object())
    monkeypatch.setattr(pruning, "survey", lambda client, settings=None: SURVEY)
    monkeypatch.setattr(
        pruning, "prune", lambda client, found: removed.append(found) or pruning.PruneResult(found.images)
    )
    return removed


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prune_dry_run_lists_and_removes_nothing(capsys, fake_survey):
    code, out, _ = run(capsys, "images", "prune", "--dry-run")
    assert code == 0 and fake_survey == []
    assert "abababababab" in out and "build stage left behind" in out
    assert "would free at least 2.90 GB (1 images); nothing removed" in out


def test_prune_without_a_terminal_needs_yes(capsys, fake_survey, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = run(capsys, "images", "prune")
    assert code == 2 and fake_survey == []
    assert "not removing 1 images without a confirmation" in err and "ops images prune --yes" in err
    code, out, _ = run(capsys, "images", "prune", "--yes")
    assert code == 0 and len(fake_survey) == 1 and "removed 1 images, freed at least 2.90 GB" in out


def test_doctor_says_how_much_prune_frees(monkeypatch):
    monkeypatch.setattr("ops.doctor.engine.client_or_skip", lambda ctx: object())
    monkeypatch.setattr("ops.docker_engine.connect", lambda **_kw: object())
    monkeypatch.setattr(pruning, "survey", lambda client, settings=None: SURVEY)
    outcome = ReclaimableCheck().run(DoctorContext(None))
    assert outcome.status is Status.WARN and outcome.fix is not None and "ops images prune" in outcome.fix
    assert outcome.detail == "2.90 GB reclaimable: 1 build stage image(s) left behind"
    monkeypatch.setattr(pruning, "survey", lambda client, settings=None: Survey(()))
    assert ReclaimableCheck().run(DoctorContext(None)).status is Status.OK
