"""The RAG app's prompt and sampling: what goes to the model, in which order, within its context."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "stacks" / "chainlit-rag"))

from rag import prompt  # noqa: E402
from rag.chunking import Chunk  # noqa: E402
from rag.gateway import Gateway  # noqa: E402
from rag.prompt import build, estimate_tokens, plan, sentences, trim  # noqa: E402
from rag.retrieval import Hit  # noqa: E402
from rag.settings import Settings  # noqa: E402

NOTE = (
    "# Spring workshop\n"
    "The spring workshop meets in Orchid Hall on the second floor of the east building.\n"
    "Doors open at 8:30 and the first session starts at nine.\n"
    "## Network\n"
    "The guest network is called ops-guest. Its password is kestrel-4417, written on the door.\n"
    "Ask the trainer for the stack's keys; they are never written on the whiteboard.\n"
)
FILLER = " ".join(f"Filler sentence number {i} talks about lunch and coffee." for i in range(40))


def hit(text: str, doc: str = "note.md", section: str = "§ Spring workshop") -> Hit:
    lines = text.count("\n") + 1
    return Hit(Chunk(f"id-{doc}-{len(text)}", doc, text, section, 1, lines), 0.03, 1, 1)


HITS = [
    hit(NOTE),
    hit("The gateway listens on port 8000 of 127.0.0.1.", "gateway.md", "§ The gateway"),
    hit("Open WebUI is pinned to release 0.12.4.", "open-webui.md", "§ Open WebUI"),
    hit("Each document is cut into passages of about 180 words.", "rag.md", "§ Chunking"),
]


def test_the_question_comes_last_after_the_passages():
    question = "Where does the spring workshop meet?"
    built = build(question, HITS, 8192, 300)
    system, user = built.messages
    assert system == {"role": "system", "content": "Answer the question from the passage."}
    assert user["role"] == "user" and user["content"].endswith(f"\n\nQuestion: {question}")
    assert user["content"].index("Orchid Hall") < user["content"].index("Question:")
    assert built.question == question and not built.notices and not built.truncated


def test_a_small_model_reads_one_short_passage_and_a_large_one_reads_them_all_numbered():
    small = build("What is the guest network's password?", HITS, 8192, 300)
    assert small.hits == HITS[:1]
    body = small.messages[1]["content"]
    assert "kestrel-4417" in body and "[1]" not in body and "note.md" not in body
    assert "# Spring" not in body  # headings go; the source list names the section
    large = build("What is the guest network's password?", HITS, 131072, 300)
    assert large.hits == HITS
    body = large.messages[1]["content"]
    assert large.messages[0]["content"] == prompt.system(small=False, numbered=True)
    assert (
        "cite the passages you use by their number in square brackets, like [1]"
        in large.messages[0]["content"]
    )
    assert body.startswith("Passages:\n[1] note.md (§ Spring workshop, lines 1-7)\n# Spring workshop")
    assert "[4] rag.md (§ Chunking, line 1)\nEach document" in body


@pytest.mark.parametrize(
    ("context", "passages", "words", "expected"),
    [
        (None, None, None, (1, 40, False)),  # unknown: taken for small
        (2048, None, None, (1, 40, False)),
        (8192, None, None, (1, 40, False)),  # SmolLM2-135M
        (32768, None, None, (4, 0, True)),
        (8192, 3, 0, (3, 0, True)),  # the settings decide for any model
        (131072, 1, 40, (1, 40, False)),
    ],
)
def test_the_plan_follows_the_context_unless_the_settings_say(context, passages, words, expected):
    shape = plan(context, passages, words)
    assert (shape.passages, shape.passage_words, shape.numbered) == expected
    assert shape.system == prompt.system((context or 0) <= 8192, shape.numbered)


def test_the_instruction_is_short_for_a_small_model_and_asks_a_larger_one_to_cite():
    assert prompt.system(small=True, numbered=False) == "Answer the question from the passage."
    assert prompt.system(small=True, numbered=True) == "Answer the question from the passages."
    one = prompt.system(small=False, numbered=False)
    assert "cite" not in one and "If the passage does not contain the answer" in one
    assert "If the passages do not contain the answer" in prompt.system(small=False, numbered=True)


def test_never_more_passages_than_were_retrieved():
    assert build("port?", HITS[1:3], 8192, 300, plan(8192, 4, 0)).hits == HITS[1:3]


@pytest.mark.parametrize(("passages", "words"), [(0, 60), (1, -1)])
def test_a_bad_plan_is_refused(passages, words):
    with pytest.raises(ValueError, match="need passages >= 1 and passage_words >= 0"):
        plan(8192, passages, words)


def test_sentences_skip_headings_and_split_list_items():
    text = "# Title\nFirst line\ngoes on. Second one!\n- item one\n- item two e.g. this\n## Next\nLast?"
    assert sentences(text) == [
        "First line goes on.",
        "Second one!",
        "- item one",
        "- item two e.g. this",
        "Last?",
    ]


def test_trim_keeps_the_sentence_that_matches_the_question_and_its_neighbours():
    cut = trim(NOTE, "What is the password of the guest network?", 30)
    assert "kestrel-4417" in cut and len(cut.split()) <= 30
    assert "Orchid" not in cut  # farther away than the budget allows
    assert (
        trim(NOTE, "When do the doors open?", 12)
        == "Doors open at 8:30 and the first session starts at nine."
    )
    # Rare words decide: "workshop" is everywhere, "floor" in one sentence only.
    assert "second floor" in trim(
        FILLER + " The workshop room is on the second floor.", "which floor workshop?", 12
    )
    assert trim(NOTE, "anything", 0) == NOTE  # 0: the whole passage


def test_trim_cuts_an_over_long_sentence_around_the_question_words():
    words = [f"w{i}" for i in range(300)]
    words[200] = "kestrel"
    cut = trim(" ".join(words), "kestrel?", 20).split()
    assert len(cut) == 20 and "kestrel" in cut and cut[0] == "w190"


def test_a_question_without_any_match_keeps_the_start_of_the_passage():
    cut = trim(NOTE, "zebra", 16)
    assert cut.startswith("The spring workshop meets in Orchid Hall")


@pytest.mark.parametrize("context", [256, 512, 2048, 8192, 131072])
@pytest.mark.parametrize("passages", [1, 4])
def test_the_context_budget_holds_for_a_huge_question_and_huge_passages(context, passages):
    long_hits = [hit(FILLER * 4, f"long{i}.md") for i in range(4)]
    for question in ("Which lunch sentence is number 7?", "word " * 100_000):
        built = build(question, long_hits, context, 300, plan(context, passages, 0))
        used = sum(estimate_tokens(m["content"]) for m in built.messages) + prompt.TEMPLATE_TOKENS
        assert used <= context - min(300, context // 4)
        # A passage trimmed to fit is better than none (256 tokens leave no room for one at all).
        assert built.hits or context == 256
    assert built.truncated and "only its first" in built.notices[0]


def test_a_passage_that_cannot_fit_even_trimmed_is_left_out():
    built = build("lunch?", [hit(FILLER)], 100, 25)
    assert built.hits == [] and "No passage of the documents matched" in built.messages[1]["content"]


def test_nothing_found_still_asks_the_question_last():
    built = build("anything", [], None, 300)
    assert (
        built.messages[1]["content"]
        == "No passage of the documents matched this question.\n\nQuestion: anything"
    )


def test_every_request_sends_the_temperature(monkeypatch):
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        events = ['data: {"choices": [{"delta": {"content": "Orchid Hall"}}]}', "data: [DONE]", ""]
        return httpx.Response(200, text="\n\n".join(events), headers={"content-type": "text/event-stream"})

    real = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", functools.partial(real, transport=httpx.MockTransport(handler)))
    gateway = Gateway("http://gateway.test/v1", "key")

    async def collect(**kwargs) -> str:
        return "".join(
            [p async for p in gateway.stream("smollm2", [{"role": "user", "content": "?"}], 50, **kwargs)]
        )

    assert asyncio.run(collect()) == "Orchid Hall"
    assert asyncio.run(collect(temperature=0.7)) == "Orchid Hall"
    assert [b["temperature"] for b in bodies] == [0.0, 0.7]
    assert bodies[0]["max_tokens"] == 50 and bodies[0]["stream"] is True


def test_settings_default_to_greedy_and_to_the_model_chosen_shape():
    s = Settings.from_env({})
    assert (s.temperature, s.top_k, s.max_tokens) == (0.0, 4, 300)
    assert s.prompt_passages is None and s.passage_words is None  # chosen by the model's context
    s = Settings.from_env({"RAG_TEMPERATURE": "0.3", "RAG_PROMPT_PASSAGES": "2", "RAG_PASSAGE_WORDS": "0"})
    assert (s.temperature, s.prompt_passages, s.passage_words) == (0.3, 2, 0)
    s = Settings.from_env({"RAG_PROMPT_PASSAGES": " Auto ", "RAG_PASSAGE_WORDS": "auto"})
    assert s.prompt_passages is None and s.passage_words is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RAG_TEMPERATURE", "hot", "RAG_TEMPERATURE must be a number from 0 to 2, got 'hot'"),
        ("RAG_TEMPERATURE", "-0.1", "RAG_TEMPERATURE must be a number from 0 to 2, got '-0.1'"),
        ("RAG_TEMPERATURE", "nan", "RAG_TEMPERATURE must be a number from 0 to 2, got 'nan'"),
        ("RAG_PROMPT_PASSAGES", "0", "RAG_PROMPT_PASSAGES must be at least 1 (or `auto`), got '0'"),
        ("RAG_PROMPT_PASSAGES", "two", "RAG_PROMPT_PASSAGES must be a whole number or `auto`, got 'two'"),
        ("RAG_PASSAGE_WORDS", "-5", "RAG_PASSAGE_WORDS must be at least 0 (or `auto`), got '-5'"),
        ("RAG_TOP_K", "0", "RAG_TOP_K must be at least 1, got '0'"),
        ("RAG_MAX_TOKENS", "lots", "RAG_MAX_TOKENS must be a whole number, got 'lots'"),
    ],
)
def test_bad_settings_say_which_and_why(name, value, message):
    with pytest.raises(SystemExit) as caught:
        Settings.from_env({name: value})
    assert str(caught.value) == message
