"""``ops eval``: normalising and matching answers, the question files and their errors, scoring
against a fake gateway and a fake RAG app, the command's exit codes, and ``ops compare --eval``."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ops.bench import eval as checks
from ops.bench import eval_questions
from ops.bench.eval_questions import Question
from ops.bench.eval_rag import RagReply, RagSkip
from ops.bench.eval_score import cites, contains, exact, is_correct, normalise
from ops.bench.target import Target
from ops.cli import main
from ops.errors import OpsError, UsageError

TARGET = Target("http://eval.test/v1", key="k", stack="s")

# --- normalising and matching -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("The capital of France is Paris.", "capital of france is paris"),
        ("  An   APPLE,\na day!  ", "apple day"),
        ("Seven days; twenty hours; zero", "7 days 20 hours 0"),
        ("twenty-one", "20 1"),  # number words only up to twenty, each word on its own
        ("It costs 3,300 euros, or 3.50 each.", "it costs 3300 euros or 3.50 each"),
        ("Pinned to v0.12.4.", "pinned to 0.12.4"),
        ("H₂O", "h2o"),
        ("Zürich's lake", "zurich lake"),
        ("help@example.org", "help example org"),
        ("all-MiniLM-L6-v2", "all minilm l6 2"),
        ("snake_case at 9:30", "snake case at 9 30"),
        ("", ""),
    ],
)
def test_normalise(text, normalised):
    assert normalise(text) == normalised


def test_contains_matches_whole_words_after_normalising_both_sides():
    assert contains("The largest planet is Jupiter.", "jupiter")
    assert contains("A week has seven days.", "7")
    assert contains("A week has 7 days.", "seven")
    assert contains("The workshop is in Room B12.", "room b12")
    assert not contains("Jupiters moons", "Jupiter")
    assert not contains("It takes 17 days", "7")
    assert not contains("anything", "the")  # an expected answer that normalises to nothing never matches


def test_an_expected_answer_of_symbols_only_is_matched_as_written():
    assert contains("Secrets show as ******** everywhere.", "********")
    assert not contains("Secrets are hidden.", "********")
    assert exact(" ******** ", "********") and not exact("It is ********", "********")


def test_exact_wants_the_whole_answer():
    assert exact("Rome.", "rome") and exact("  the Rome ", "Rome")
    assert not exact("It is Rome.", "Rome")
    assert exact("Five", "5")


def test_is_correct_takes_any_expected_answer_and_the_match_rule():
    assert is_correct("Half past nine", ["9:30", "half past nine"])
    assert is_correct("It is Rome", ["Rome"], "contains")
    assert not is_correct("It is Rome", ["Rome"], "exact")
    assert not is_correct("Paris", [])


def test_cites_looks_at_the_first_source_only():
    assert cites(["rag.md", "gateway.md"], "rag.md")
    assert cites(["notes/rag.md"], "rag.md")
    assert not cites(["gateway.md", "rag.md"], "rag.md")
    assert not cites([], "rag.md")
    assert not cites(["myrag.md"], "rag.md")


# --- question files -----------------------------------------------------------------------------


def test_the_built_in_general_set_has_facts_and_extraction():
    general = eval_questions.load_file(eval_questions.BUILTIN_DIR / "general.yaml")
    assert len(general) >= 24
    assert {q.kind for q in general} == {"fact", "extraction"}
    assert any(q.match == "exact" for q in general)
    everything = eval_questions.load()  # every ops/evals/*.yaml, ids unique across files
    assert {q.file.rsplit("/", 1)[-1] for q in everything} >= {"general.yaml"}
    assert all(q.source for q in everything if q.kind == "rag")


def test_a_question_file_is_read_with_its_lines(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "- id: a\n  kind: fact\n  question: Capital of France?\n  expected: [Paris]\n"
        "- id: b\n  kind: rag\n  question: Which port?\n  expected: [8000]\n  source: gateway.md\n  match: exact\n"
    )
    a, b = eval_questions.load([path])
    assert a == Question("a", "fact", "Capital of France?", ("Paris",), "contains", None, str(path), 1)
    assert (b.expected, b.match, b.source, b.line) == (("8000",), "exact", "gateway.md", 5)


ITEM = "- id: x\n  kind: fact\n  question: Why?\n  expected: [because]\n"
KEYS_HINT = eval_questions.ITEM_HINT


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "- id: x\n  kind: fact\n  question: Why?\n",
            "{path}:1 item x: missing key 'expected'",
            KEYS_HINT,
        ),
        (
            ITEM + "  answer: yes\n",
            "{path}:5 item x: unknown key 'answer'",
            "valid keys: id, kind, question, expected, match, source",
        ),
        (
            ITEM + "  expectd: [no]\n",
            "{path}:5 item x: unknown key 'expectd' (did you mean 'expected'?)",
            "valid keys: id, kind, question, expected, match, source",
        ),
        (
            "- id: x\n  kind: fact\n  question: Why?\n  expected: []\n",
            "{path}:4 item x: expected: empty list",
            "give at least one acceptable answer",
        ),
        (
            "- id: x\n  kind: fact\n  question: Why?\n  expected: because\n",
            "{path}:4 item x: expected: a list of acceptable answers",
            'e.g. expected: [Paris]  or  expected: ["7", "seven"]',
        ),
        (
            "- id: x\n  kind: fact\n  question: Why?\n  expected: [the]\n",
            "{path}:1 item x: expected: 'the' is empty once normalised (articles and punctuation go)",
            KEYS_HINT,
        ),
        (
            "- id: x\n  kind: trivia\n  question: Why?\n  expected: [because]\n",
            "{path}:2 item x: kind: unknown kind 'trivia'",
            "valid kinds: fact, extraction, rag",
        ),
        (
            ITEM + "  match: fuzzy\n",
            "{path}:5 item x: match: unknown match 'fuzzy'",
            "valid matches: contains (the default), exact",
        ),
        (
            ITEM + ITEM,
            "{path}:5 item x: duplicate id 'x' (first on line 1)",
            "give every question its own id",
        ),
        (
            "- id: x\n  kind: rag\n  question: Why?\n  expected: [because]\n",
            "{path}:1 item x: source: a rag item names the document that holds the answer",
            KEYS_HINT,
        ),
        (
            ITEM + "  source: rag.md\n",
            "{path}:1 item x: source: only rag items have a source, this one is fact",
            KEYS_HINT,
        ),
        (
            ITEM + "  kind: rag\n",
            "{path}:5 item x: duplicate key 'kind'",
            "remove one of them; YAML would silently keep only the last",
        ),
        ("- [x\n", "{path}:2: not valid YAML: expected ',' or ']', but got '<stream end>'", None),
        ("- id: x\n   kind: fact\n", "{path}:2: not valid YAML: mapping values are not allowed here", None),
        ("id: x\n", "{path}:1: expected a list of questions", None),
        ("", "{path}: no questions in the file", None),
        ("- just a string\n", "{path}:1 item #1: expected a mapping of keys", KEYS_HINT),
        (
            "- kind: fact\n  question: Why?\n  expected: [a]\n",
            "{path}:1 item #1: missing key 'id'",
            KEYS_HINT,
        ),
    ],
)
def test_a_bad_question_file_is_one_line_naming_file_line_and_item(tmp_path, text, message, hint):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        eval_questions.load([path])
    assert info.value.message == message.format(path=path)
    assert "\n" not in info.value.message and info.value.exit_code == 2
    if hint is not None:
        assert info.value.hint == hint


def test_unreadable_files_and_ids_repeated_across_files(tmp_path):
    with pytest.raises(UsageError) as info:
        eval_questions.load([tmp_path / "missing.yaml"])
    assert info.value.message == f"cannot read {tmp_path / 'missing.yaml'}: No such file or directory"
    (tmp_path / "latin1.yaml").write_bytes("- id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UsageError, match="not UTF-8 text"):
        eval_questions.load([tmp_path / "latin1.yaml"])
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(ITEM)
    two.write_text(ITEM.replace("Why?", "How?"))
    with pytest.raises(UsageError) as info:
        eval_questions.load([one, two])
    assert info.value.message == f"{two}:1 item x: duplicate id 'x' (first at {one}:1)"


def test_kinds_are_checked():
    assert checks.parse_kinds(None) == ("fact", "extraction", "rag")
    assert checks.parse_kinds("rag, fact,rag") == ("rag", "fact")
    with pytest.raises(UsageError) as info:
        checks.parse_kinds("fact,trivia")
    assert (info.value.message, info.value.hint) == (
        "--kinds: unknown kind 'trivia'",
        "valid kinds: fact, extraction, rag",
    )
    with pytest.raises(UsageError, match="no kind given"):
        checks.parse_kinds(" , ")


# --- models -------------------------------------------------------------------------------------

CARDS = [
    {"id": "small", "task": "chat", "ready": True, "owned_by": "foundry"},
    {"id": "big", "task": "chat", "ready": True, "owned_by": "cloud"},
    {"id": "embed", "task": "embeddings", "ready": True, "owned_by": "foundry"},
    {"id": "cold", "task": "chat", "ready": False, "owned_by": "foundry"},
    {"id": "auto", "ready": True, "owned_by": "ops-router", "routes_to": ["small", "big"]},
]


def test_default_models_are_the_ready_chat_models_and_names_are_checked():
    assert checks.choose_models(CARDS, None) == ["small", "big"]
    assert checks.choose_models(CARDS, ["auto", "small", "auto"]) == ["auto", "small"]
    with pytest.raises(UsageError) as info:
        checks.choose_models(CARDS, ["small", "nope"])
    assert info.value.message == "unknown model nope"
    assert info.value.hint == "the gateway serves: small, big, embed, cold, auto"
    with pytest.raises(OpsError, match="no ready chat model"):
        checks.choose_models(CARDS[2:4], None)


# --- running against a fake gateway -------------------------------------------------------------

ANSWERS = {
    "Capital of France?": "The capital of France is Paris.",
    "Days in a week?": "A week has seven days, as everyone knows.",
    "Capital of Italy?": "The capital of Italy is Rome.",
    "Room?": "The workshop is in room B12.",
}
QUESTIONS = (
    Question("france", "fact", "Capital of France?", ("Paris",)),
    Question("week", "fact", "Days in a week?", ("7",)),
    Question("italy", "fact", "Capital of Italy?", ("Rome",), "exact"),
    Question("room", "extraction", "Room?", ("B12",)),
    Question("port", "rag", "Which port?", ("8000",), source="gateway.md"),
    Question("overlap", "rag", "How much overlap?", ("40",), source="rag.md"),
)


def gateway(seen: list[dict], broken: str = "", cards=CARDS):
    """An OpenAI-compatible gateway answering from ``ANSWERS``; model ``broken`` answers HTTP 500."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": cards})
        body = json.loads(request.content)
        seen.append(body)
        if body["model"] == broken:
            return httpx.Response(500, json={"error": {"code": "upstream_failed"}})
        text = ANSWERS.get(body["messages"][-1]["content"], "Hello!")
        words = text.split(" ")
        events = [{"choices": [{"delta": {"content": w + " "}}]} for w in words[:-1]]
        events += [{"choices": [{"delta": {"content": words[-1]}}]}]
        events += [{"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": len(words)}}]
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(200, content=sse.encode())

    return httpx.MockTransport(handler)


def test_every_question_goes_to_each_model_greedy_short_with_one_system_prompt():
    seen: list[dict] = []
    result = checks.run(
        TARGET,
        ["small", "big"],
        QUESTIONS[:4],
        max_tokens=32,
        system_prompt=checks.SYSTEM_PROMPT,
        transport=gateway(seen),
    )
    asked = [(b["model"], b["messages"][-1]["content"]) for b in seen]
    assert asked == [("small", "Hi")] + [("small", q.question) for q in QUESTIONS[:4]] + [("big", "Hi")] + [
        ("big", q.question) for q in QUESTIONS[:4]
    ]
    for body in seen[1:5]:
        assert body["temperature"] == 0 and body["top_p"] == 1 and body["max_tokens"] == 32
        assert body["messages"][0] == {"role": "system", "content": "Answer in a few words."}
    by = {(i.model, i.id): i for i in result.items}
    assert by["small", "france"].correct and by["small", "week"].correct and by["small", "room"].correct
    assert not by["small", "italy"].correct  # exact: "The capital of Italy is Rome." is more than "Rome"
    assert by["small", "week"].tokens == 8 and by["small", "week"].answer.startswith("A week has seven")
    small = result.models[0]
    assert (small.model, small.correct, small.items, small.score) == ("small", 3, 4, 0.75)
    assert small.kinds["fact"].score == pytest.approx(2 / 3) and small.kinds["extraction"].score == 1.0
    assert result.answered == 8 and result.rag == "no rag questions"
    assert result.system_prompt == "Answer in a few words." and result.max_tokens == 32


def test_by_default_only_the_question_is_sent_and_the_model_keeps_its_own_system_prompt():
    seen: list[dict] = []
    result = checks.run(TARGET, ["small"], QUESTIONS[:1], transport=gateway(seen))
    assert seen[1]["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert seen[1]["max_tokens"] == checks.DEFAULT_MAX_TOKENS == 64
    assert result.system_prompt is None


def test_a_failing_request_is_a_wrong_answer_with_its_reason_and_rag_without_the_app_is_skipped():
    result = checks.run(TARGET, ["small", "big"], QUESTIONS, transport=gateway([], broken="big"))
    big = {i.id: i for i in result.items if i.model == "big"}
    assert big["france"].status == "error" and big["france"].reason == "HTTP 500 upstream_failed"
    assert big["port"].status == "skipped" and big["port"].reason == "no Chainlit RAG app"
    summary = {m.model: m for m in result.models}
    assert (summary["big"].correct, summary["big"].items, summary["big"].errors) == (0, 4, 4)
    assert (summary["big"].kinds["rag"].score, summary["big"].kinds["rag"].skipped) == (None, 2)
    assert summary["small"].score == 0.75 and summary["small"].skipped == 2
    assert result.rag == "skipped: no Chainlit RAG app"
    # Results follow the order of models, then questions, whatever path they went by.
    assert [(i.model, i.id) for i in result.items] == [(m, q.id) for m in ("small", "big") for q in QUESTIONS]


class FakeApp:
    """A RAG app: answers ``port`` right citing the right file, ``overlap`` right citing the wrong one."""

    where = "chainlit-rag at http://rag.test"

    def __init__(self, fail: dict[str, OpsError] | None = None):
        self.fail = fail or {}
        self.asked: list[tuple[str, str]] = []

    @contextmanager
    def session(self, model):
        if model in self.fail:
            raise self.fail[model]
        app = self

        class Session:
            def ask(self, question):
                app.asked.append((model, question))
                if question == "Which port?":
                    return RagReply("It listens on port 8000.", ("gateway.md", "rag.md"), model, 6)
                return RagReply("They overlap by 40 words.", ("gateway.md", "rag.md"), model, 5)

        yield Session()


def test_rag_questions_go_through_the_app_and_must_cite_the_document():
    app = FakeApp()
    result = checks.run(TARGET, ["small"], QUESTIONS, rag=app, transport=gateway([]))
    assert app.asked == [("small", "Which port?"), ("small", "How much overlap?")]
    by = {i.id: i for i in result.items}
    port, overlap = by["port"], by["overlap"]
    assert (port.correct, port.answer_correct, port.cited, port.cited_correct) == (
        True,
        True,
        "gateway.md",
        True,
    )
    assert (overlap.correct, overlap.answer_correct, overlap.cited_correct) == (False, True, False)
    assert by["france"].answer_correct is None and by["france"].cited is None
    rag = result.models[0].kinds["rag"]
    assert (rag.score, rag.answer_correct, rag.cited_correct) == (0.5, 2, 1)
    assert result.models[0].kinds["fact"].cited_correct is None
    assert result.rag == "through chainlit-rag at http://rag.test"


def test_a_model_the_app_does_not_offer_is_skipped_and_a_broken_app_fails_its_questions():
    app = FakeApp(
        {
            "small": RagSkip("chainlit-rag does not offer small (it offers big)"),
            "big": OpsError("the Chainlit app refused the generated sign-in (HTTP 401: no)"),
        }
    )
    result = checks.run(TARGET, ["small", "big"], QUESTIONS[4:], rag=app)
    states = {(i.model, i.id): (i.status, i.reason) for i in result.items}
    assert states["small", "port"] == ("skipped", "chainlit-rag does not offer small (it offers big)")
    assert states["big", "overlap"] == (
        "error",
        "the Chainlit app refused the generated sign-in (HTTP 401: no)",
    )
    assert result.answered == 0


def test_the_app_answering_with_another_model_is_an_error():
    class Other(FakeApp):
        @contextmanager
        def session(self, model):
            with super().session("big") as session:
                yield session

    result = checks.run(TARGET, ["small"], QUESTIONS[4:5], rag=Other())
    assert (result.items[0].status, result.items[0].reason) == ("error", "the app answered with big")


def test_the_run_is_saved_as_json(tmp_path):
    result = checks.run(TARGET, ["small"], QUESTIONS, transport=gateway([]))
    data = json.loads(checks.save(result, tmp_path / "deep" / "eval.json").read_text())
    assert data["models"][0]["kinds"]["fact"]["score"] == pytest.approx(2 / 3)
    assert data["items"][0]["expected"] == ["Paris"] and data["stack"] == "s"


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def offline_gateway(monkeypatch, tmp_path):
    """`ops eval` and `ops compare` against the fake gateway: the target resolved, httpx on the mock."""
    seen: list[dict] = []
    transport = gateway(seen)
    target = Target("http://eval.test/v1", key="k", stack="s", results_dir=tmp_path / "results")
    monkeypatch.setattr("ops.cli.bench.resolve_target", lambda *_args: target)
    # Every client's real transport answers from the fake, however the client was made.
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", lambda _self, r: transport.handle_request(r))

    async def handle_async(_self, request):
        return await transport.handle_async_request(request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle_async)
    monkeypatch.setattr(
        "ops.bench.eval_rag.open_channel", lambda *_a, **_k: (None, "profile s has no chainlit-rag service")
    )
    return seen


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["eval", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def questions_file(tmp_path: Path) -> Path:
    path = tmp_path / "q.yaml"
    path.write_text(
        "".join(
            f"- {{id: {q.id}, kind: {q.kind}, question: '{q.question}', expected: [{q.expected[0]}], "
            f"match: {q.match}{', source: ' + q.source if q.source else ''}}}\n"
            for q in QUESTIONS
        )
    )
    return path


def test_the_command_prints_scores_per_kind_and_the_wrong_answers(offline_gateway, capsys, tmp_path):
    code, out, err = run_cli(capsys, "--questions", str(questions_file(tmp_path)), "--models", "small")
    assert code == 0, err
    assert "small" in out and "2/3 67%" in out and "1/1 100%" in out and "3/4 75%" in out
    assert "skipped: profile s has no chainlit-rag service" in out
    assert "no system prompt" in out
    assert "1 wrong or failed:" in out and "italy" in out
    saved = next(line for line in out.splitlines() if line.startswith("results saved to "))
    assert saved.startswith(f"results saved to {tmp_path / 'results' / 'eval-'}")


def test_json_prints_the_whole_result_and_out_writes_it(offline_gateway, capsys, tmp_path):
    out_file = tmp_path / "eval.json"
    code, out, err = run_cli(
        capsys,
        "--questions",
        str(questions_file(tmp_path)),
        "--kinds",
        "fact",
        "--max-tokens",
        "16",
        "--json",
        "--out",
        str(out_file),
    )
    assert code == 0, err
    data = json.loads(out)
    assert data == json.loads(out_file.read_text())
    assert [m["model"] for m in data["models"]] == ["small", "big"]  # every ready chat model by default
    assert {i["kind"] for i in data["items"]} == {"fact"} and len(data["items"]) == 6
    assert data["max_tokens"] == 16 and data["system_prompt"] is None
    asked = [b for b in offline_gateway if b["messages"][-1]["content"] != "Hi"]  # not the warm-ups
    assert len(asked) == 6
    assert all(b["max_tokens"] == 16 and b["messages"][0]["role"] == "user" for b in asked)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "trivia"], "error: --kinds: unknown kind 'trivia'"),
        (["--models", "small,nope"], "error: unknown model nope"),
        (["--questions", "missing.yaml"], "error: cannot read missing.yaml: No such file or directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(offline_gateway, capsys, args, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, _out, err = run_cli(capsys, *args)
    assert code == 2
    assert err.splitlines()[0] == message


def test_a_bad_question_file_exits_2_naming_file_and_item(offline_gateway, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text("- id: a\n  kind: fact\n  question: Why?\n  expected: []\n")
    code, _out, err = run_cli(capsys, "--questions", "q.yaml")
    assert code == 2
    assert err.splitlines()[:2] == [
        "error: q.yaml:4 item a: expected: empty list",
        "hint: give at least one acceptable answer",
    ]


def test_no_questions_of_the_chosen_kinds_exits_2(offline_gateway, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("q.yaml").write_text(ITEM)
    code, _out, err = run_cli(capsys, "--questions", "q.yaml", "--kinds", "rag")
    assert (code, err.splitlines()[0]) == (2, "error: no questions of kind rag in q.yaml")


def test_nothing_answered_exits_1(offline_gateway, capsys, tmp_path):
    code, out, err = run_cli(capsys, "--questions", str(questions_file(tmp_path)), "--kinds", "rag")
    assert code == 1
    assert "rag: skipped: profile s has no chainlit-rag service" in out
    assert "no question got an answer" in err


def test_compare_with_eval_adds_checked_answers_to_the_report_and_its_json(offline_gateway, capsys, tmp_path):
    folder = tmp_path / "report"
    code = main(
        ["compare", "--models", "small,big", "--max-tokens", "4", "--eval", "--out", str(folder), "--json"]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed == json.loads((folder / "compare.json").read_text())
    checked = printed["checked"]
    assert [m["model"] for m in checked["models"]] == ["small", "big"]
    assert {q["kind"] for q in checked["items"]} >= {"fact", "extraction"}
    page = (folder / "report.html").read_text()
    assert "<h2>Checked answers</h2>" in page and "<th>extraction</th>" in page
    assert page.index("<h2>Checked answers</h2>") < page.index("<h2>Charts</h2>")


def test_compare_without_eval_is_unchanged(offline_gateway, capsys, tmp_path):
    folder = tmp_path / "report"
    code = main(["compare", "--models", "small,big", "--max-tokens", "4", "--out", str(folder), "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and "checked" not in printed
    assert "Checked answers" not in (folder / "report.html").read_text()
    assert all(b["messages"][-1]["content"] != "Capital of France?" for b in offline_gateway)
