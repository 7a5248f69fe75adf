"""Make a real, tiny ONNX Runtime GenAI chat model from local text, with no download.

No model hub can be reached where this project is built and tested, yet the Foundry Local
and ONNX Runtime GenAI paths need a real model to prove they work. This script makes one:

1. trains a byte-level BPE tokenizer on ``corpus.txt`` beside this file;
2. builds a Qwen2 model with random weights from a fixed seed (ChatML chat template);
3. exports it with ``onnxruntime_genai.models.builder`` to fp32 or int4 for the CPU;
4. keeps only the files the runtime needs and checks that greedy output repeats.

The model writes gibberish: it is for smoke tests and benchmarks, not for answers.

Building needs torch and transformers (about 1.3 GB), which the runtime must not depend on,
so the script creates its own virtual environment once (``--builder-venv``) and re-runs
itself inside it. Run it as::

    python -m ops.models.tinymodel.make --size tiny --precision fp32 --out ops/models/bundled/tiny-fp32
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

from ops.errors import ModelError, OpsError, UsageError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CORPUS = HERE / "corpus.txt"

# Exact pins make the same command give the same bytes next month. torch is pinned to the CPU
# wheel this project's machines keep on local disk; an unpinned torch pulls a multi-GB CUDA build.
BUILDER_REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "onnx==1.23.2",
    "onnx-ir==1.1.0",
    "onnxruntime==1.31.0",
    "onnxruntime-genai==0.18.0",
)
STAMP = "ops-builder-requirements.txt"

SEED = 20261125
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# hidden 128 x 2 layers is about 1.4 M parameters (5.6 MB in fp32): small enough to commit.
# "bench" is tens of millions of parameters, so timings measure the runtime, not overhead.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "vocab_size": 2048,
        "hidden_size": 128,
        "intermediate_size": 1024,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
    },
    "bench": {
        "vocab_size": 2048,
        "hidden_size": 512,
        "intermediate_size": 1536,
        "num_hidden_layers": 8,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
    },
}

# What the runtime reads; anything else the exporter leaves behind is dropped.
RUNTIME_FILES = (
    "genai_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)
SMOKE_MESSAGES = [{"role": "user", "content": "What is a small language model?"}]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; paths are resolved against the current directory."""
    parser = argparse.ArgumentParser(
        prog="python -m ops.models.tinymodel.make",
        description="Make a tiny random-weight ONNX Runtime GenAI chat model from local text.",
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--precision", choices=("fp32", "int4"), default="fp32")
    parser.add_argument("--name", help="model name; default SIZE-PRECISION")
    parser.add_argument("--out", type=Path, help="output folder; default <repo>/.cache/models/NAME")
    parser.add_argument(
        "--builder-venv",
        type=Path,
        default=REPO / ".cache" / "tinymodel-builder",
        help="virtual environment holding torch and transformers (created once, reused)",
    )
    # Set by the outer process when it re-runs this script inside the builder environment.
    parser.add_argument("--in-builder", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.name = args.name or f"{args.size}-{args.precision}"
    args.out = (args.out or REPO / ".cache" / "models" / args.name).resolve()
    args.builder_venv = args.builder_venv.resolve()
    return args


def ensure_builder(venv_dir: Path) -> Path:
    """Create the builder virtual environment unless one with the same pins exists; return its python."""
    python = venv_dir / "bin" / "python"
    stamp = venv_dir / STAMP
    wanted = "\n".join(BUILDER_REQUIREMENTS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    started = time.perf_counter()
    print(f"setting up the builder environment in {venv_dir} (once; about 1.3 GB)", flush=True)
    if not python.exists():
        venv.EnvBuilder(with_pip=True, clear=venv_dir.exists()).create(venv_dir)
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BUILDER_REQUIREMENTS])
    if done.returncode != 0:
        raise ModelError(
            "could not install the tiny-model builder's packages",
            hint=f"see pip's output above; delete {venv_dir} to start over",
        )
    stamp.write_text(wanted)
    print(f"builder environment ready in {time.perf_counter() - started:.1f} s", flush=True)
    return python


def check_out_dir(out: Path) -> None:
    """Refuse to replace a folder that is not a model folder, so a typo cannot delete real work."""
    if out.exists() and any(out.iterdir()) and not (out / "genai_config.json").exists():
        raise UsageError(
            f"{out} exists and is not a model folder",
            hint="choose an empty or new folder with --out",
        )


def train_tokenizer(vocab_size: int):
    """Train a byte-level BPE tokenizer on the corpus and wrap it for transformers.

    Byte level means every byte is in the alphabet, so any prompt encodes, however odd.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(CORPUS)], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
    )


def never_emitted(tokenizer, vocab_size: int) -> list[int]:
    """Token ids the model must never write: end tokens, ids past the vocabulary, unprintable bytes.

    Random weights could pick an end token first and answer nothing, an id the tokenizer lacks,
    or a control byte or half a UTF-8 character that garbles a terminal or a stream. Zeroing
    these rows of the output projection scores them exactly 0 while thousands of random rows
    score around it, so greedy never picks them: every reply is printable text that runs to
    max_tokens, which smoke tests and benchmarks want.
    """
    never = set(tokenizer.convert_tokens_to_ids([PAD, IM_START, IM_END]))
    never |= set(range(len(tokenizer), vocab_size))
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        # A lone byte of a multi-byte character decodes to U+FFFD, which counts as printable.
        if not text or "\ufffd" in text or not all(ch.isprintable() or ch == "\n" for ch in text):
            never.add(token_id)
    return sorted(never)


def make_hf_model(size: str, tokenizer, hf_dir: Path):
    """Build a random-weight Qwen2 checkpoint with its tokenizer in ``hf_dir``; return the model."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    pad_id, eos_id = tokenizer.convert_tokens_to_ids([PAD, IM_END])
    config = Qwen2Config(
        **SIZES[size],
        tie_word_embeddings=False,
        # As in Qwen2 itself; the chat template adds no BOS, so the value only fills the field.
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight[never_emitted(tokenizer, config.vocab_size)] = 0.0
    model.generation_config = GenerationConfig(do_sample=False, eos_token_id=eos_id, pad_token_id=pad_id)
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    return model


def hf_greedy(model, tokenizer, messages: list[dict[str, str]], max_new_tokens: int = 20) -> list[int]:
    """Greedy new token ids from the transformers model: the reference the ONNX export must match."""
    from transformers import GenerationConfig

    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids
    settings = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    output = model.generate(input_ids, generation_config=settings)
    return output[0, input_ids.shape[1] :].tolist()


def export_onnx(hf_dir: Path, stage: Path, cache: Path, precision: str) -> None:
    """Run the ONNX Runtime GenAI model builder, offline, on the checkpoint."""
    # The builder stamps the output with `git rev-parse HEAD` run from its own install folder,
    # which inside .cache/ is this repository's HEAD: hide git so the stamp is the package's
    # commit and the same inputs give the same bytes whatever was committed since.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_DIR": os.devnull}
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder"]
    cmd += ["-i", str(hf_dir), "-o", str(stage), "-p", precision, "-e", "cpu", "-c", str(cache)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise ModelError("the ONNX Runtime GenAI model builder failed", hint="see its output above")


def set_search_defaults(genai_config: Path, context_length: int) -> None:
    """Make greedy search over the whole context the default, whatever the builder inferred."""
    config = json.loads(genai_config.read_text())
    config["model"]["context_length"] = context_length
    config["search"].update({"do_sample": False, "max_length": context_length, "num_beams": 1})
    genai_config.write_text(json.dumps(config, indent=4) + "\n")


def keep_runtime_files(stage: Path, out: Path) -> list[str]:
    """Replace ``out`` with only the runtime's files from ``stage``; return the names kept."""
    config = json.loads((stage / "genai_config.json").read_text())
    model_file = config["model"]["decoder"]["filename"]
    wanted = [*RUNTIME_FILES, model_file, f"{model_file}.data"]
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    kept = []
    for name in wanted:
        if (stage / name).is_file():
            shutil.copyfile(stage / name, partial / name)
            kept.append(name)
    dropped = sorted(p.name for p in stage.iterdir() if p.name not in kept)
    if dropped:
        print(f"  not kept: {', '.join(dropped)}")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return kept


def greedy(
    model_dir: Path, messages: list[dict[str, str]], max_new_tokens: int = 20
) -> tuple[list[int], str]:
    """Generate greedily with ONNX Runtime GenAI; return the new token ids and their text."""
    import onnxruntime_genai as og

    model = og.Model(str(model_dir))
    tokenizer = og.Tokenizer(model)
    prompt = tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
    input_ids = tokenizer.encode(prompt)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(input_ids) + max_new_tokens)
    generator = og.Generator(model, params)
    generator.append_tokens(input_ids)
    new: list[int] = []
    while not generator.is_done():
        generator.generate_next_token()
        new.append(int(generator.get_next_tokens()[0]))
    return new, tokenizer.decode(new)


def folder_size(path: Path) -> int:
    """Total bytes of the files directly in ``path``."""
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def build(args: argparse.Namespace) -> None:
    """The build proper; runs inside the builder environment."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now
        print(f"  {step}: {timings[step]:.1f} s", flush=True)

    check_out_dir(args.out)
    print(f"making {args.name} ({args.size}, {args.precision}) in {args.out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tinymodel-") as tmp:
        work = Path(tmp)
        tokenizer = train_tokenizer(SIZES[args.size]["vocab_size"])
        lap("tokenizer")
        model = make_hf_model(args.size, tokenizer, work / "hf")
        params = sum(p.numel() for p in model.parameters())
        reference = hf_greedy(model, tokenizer, SMOKE_MESSAGES)
        lap("random weights")
        export_onnx(work / "hf", work / "onnx", work / "cache", args.precision)
        lap("onnx export")
        set_search_defaults(work / "onnx" / "genai_config.json", SIZES[args.size]["max_position_embeddings"])
        kept = keep_runtime_files(work / "onnx", args.out)
    first = greedy(args.out, SMOKE_MESSAGES)
    second = greedy(args.out, SMOKE_MESSAGES)
    lap("greedy check")
    if first != second or not first[0]:
        raise ModelError(f"greedy output is empty or differs between runs: {first!r} vs {second!r}")
    # int4 rounds every weight, so only the fp32 export must agree token for token.
    if args.precision == "fp32" and first[0] != reference:
        raise ModelError(f"ONNX greedy tokens {first[0]} differ from transformers' {reference}")
    print(f"parameters: {params:,} ({params / 1e6:.2f} M)")
    print(f"files: {', '.join(kept)}")
    print(f"output size: {folder_size(args.out) / 1e6:.2f} MB in {args.out}")
    print(f"greedy reply to {SMOKE_MESSAGES[0]['content']!r}: {first[1]!r}")
    print(f"total build time: {sum(timings.values()):.1f} s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: set up the builder environment, then build inside it."""
    args = parse_args(argv)
    try:
        if args.in_builder:
            build(args)
            return 0
        check_out_dir(args.out)
        python = ensure_builder(args.builder_venv)
        cmd = [str(python), "-m", "ops.models.tinymodel.make", "--in-builder"]
        cmd += ["--size", args.size, "--precision", args.precision, "--name", args.name]
        cmd += ["--out", str(args.out), "--builder-venv", str(args.builder_venv)]
        # The builder environment has no ``ops`` installed: import it from this checkout.
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(cmd, cwd=REPO, env=env).returncode
    except OpsError as err:
        print(f"error: {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return int(err.exit_code)


if __name__ == "__main__":
    sys.exit(main())
