"""Make the demo's digits classifier (``site/model/digits.onnx``) and its known samples, with no download.

No model hub can be reached where this project is built and tested, so the browser demo's model
is made here, from data that ships inside scikit-learn:

1. ``sklearn.datasets.load_digits`` (1,797 handwritten digits, 8x8, bundled with the package) is
   scaled up to the 28x28 frame a drawing canvas gives, with small shifts so drawn digits that sit
   a little off centre are still recognised;
2. a small MLP (784 -> 64 -> 10) is trained with a fixed seed on one thread, so the same
   package versions give the same weights;
3. its weights are written as ONNX with ``onnx.helper``: Reshape -> Gemm -> Relu -> Gemm, input
   ``input`` float32 [1, 1, 28, 28] (pixels 0..1, ink high), output ``logits`` float32 [1, 10];
4. one held-out sample per digit that the model gets right goes to ``samples.json`` as 0..255
   pixels with its label and the logits a plain float32 forward pass gives, for the page and tests.

scikit-learn and onnx are needed only here, so the script makes its own virtual environment
once (``--venv``, default ``.cache/webgpu-model-venv`` in the repository) and re-runs itself
inside it. Run it as::

    python stacks/webgpu-demo/make_model.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import venv
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = HERE / "site" / "model"

# Exact pins: the same command gives the same bytes next month.
REQUIREMENTS = ("scikit-learn==1.9.1", "onnx==1.23.2", "numpy==2.4.6", "scipy==1.17.1")
STAMP = "ops-model-requirements.txt"

SEED = 20261125
SIZE = 28  # the canvas frame, as in MNIST; the model's input is 1x1x28x28
INNER = 24  # the digit's box inside the frame, leaving 2 px of margin for shifts
HIDDEN = 64
SHIFTS = ((0, 0), (-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (1, 1), (-1, 1), (1, -1))
OPSET = 17  # onnxruntime-web 1.30 runs opsets up to 23; 17 keeps older runtimes working too
IR_VERSION = 8


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, make sure the builder venv is used, and write the model and samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="Folder for digits.onnx and samples.json.")
    parser.add_argument(
        "--venv",
        type=Path,
        default=REPO / ".cache" / "webgpu-model-venv",
        help="Virtual environment with scikit-learn and onnx (made on first use).",
    )
    args = parser.parse_args(argv)
    if not _inside(args.venv):
        return _rerun_in(args.venv, argv if argv is not None else sys.argv[1:])
    # One BLAS thread: summation order then depends only on the data, so weights repeat bit for bit.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        report = build(args.out)
    print(json.dumps(report, indent=2))
    return 0


def _inside(env: Path) -> bool:
    return Path(sys.prefix).resolve() == env.resolve()


def _rerun_in(env: Path, argv: list[str]) -> int:
    """Create ``env`` with the pinned requirements if it lacks them, then run this script there."""
    python = env / "bin" / "python"
    stamp = env / STAMP
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"make_model: preparing {env} with {', '.join(REQUIREMENTS)}", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=python.exists()).create(env)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            check=True,
        )
        stamp.write_text(wanted)
    env_vars = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([str(python), str(Path(__file__).resolve()), *argv], env=env_vars).returncode


def frames(images8):
    """Scale 8x8 digits (0..16) to float32 28x28 frames (0..1): bilinear to 24x24, centred."""
    import numpy as np
    from scipy.ndimage import zoom

    out = np.zeros((len(images8), SIZE, SIZE), dtype=np.float32)
    margin = (SIZE - INNER) // 2
    for i, image in enumerate(images8):
        big = zoom(image.astype(np.float64) / 16.0, INNER / 8, order=1)
        out[i, margin : margin + INNER, margin : margin + INNER] = np.clip(big, 0.0, 1.0)
    return out


def shifted(batch, dy: int, dx: int):
    """``batch`` moved by (dy, dx) pixels; the margin keeps every ink pixel inside the frame."""
    import numpy as np

    return np.roll(batch, (dy, dx), axis=(1, 2))


def to_onnx(mlp):
    """The trained MLP as an ONNX model: Reshape -> Gemm -> Relu -> Gemm, logits out."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1, w2 = (np.asarray(w, dtype=np.float32) for w in mlp.coefs_)
    b1, b2 = (np.asarray(b, dtype=np.float32) for b in mlp.intercepts_)
    initializers = [
        numpy_helper.from_array(np.array([1, SIZE * SIZE], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(w1, "w1"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(b2, "b2"),
    ]
    nodes = [
        helper.make_node("Reshape", ["input", "flat_shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w1", "b1"], ["hidden_pre"], name="dense1"),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
        helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"], name="dense2"),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        initializers,
    )
    model = helper.make_model(
        graph,
        producer_name="ops stacks/webgpu-demo/make_model.py",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.doc_string = (
        "Digits MLP trained on scikit-learn's load_digits scaled to 28x28; input pixels 0..1, ink high."
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def forward(mlp, x):
    """Logits of ``x`` (N x 784 float32) computed in float32, as the ONNX graph does."""
    import numpy as np

    w1, w2 = (np.asarray(w, dtype=np.float32) for w in mlp.coefs_)
    b1, b2 = (np.asarray(b, dtype=np.float32) for b in mlp.intercepts_)
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2


def build(out: Path) -> dict:
    """Train, export and pick the samples; return what a person wants to see about the result."""
    import numpy as np
    import onnx
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    images = frames(digits.images)
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=0.2, random_state=SEED, stratify=labels
    )
    aug_x = np.concatenate([shifted(train_x, dy, dx) for dy, dx in SHIFTS]).reshape(-1, SIZE * SIZE)
    aug_y = np.concatenate([train_y] * len(SHIFTS))

    mlp = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,),
        activation="relu",
        alpha=1e-3,
        batch_size=128,
        max_iter=60,
        random_state=SEED,
        # Fixed epochs, no early stopping: convergence warnings are expected and harmless here.
        n_iter_no_change=1000,
    )
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(aug_x, aug_y)

    # The page and tests feed 0..255 pixels divided by 255, so the samples are stored quantised
    # and their reference logits come from exactly those inputs.
    flat_test = test_x.reshape(-1, SIZE * SIZE)
    accuracy = float((forward(mlp, flat_test).argmax(1) == test_y).mean())
    samples = []
    for digit in range(10):
        for index in np.flatnonzero(test_y == digit):
            pixels = np.rint(flat_test[index] * 255).astype(np.uint8)
            x = (pixels.astype(np.float64) / 255).astype(np.float32)[None, :]
            logits = forward(mlp, x)[0]
            if int(logits.argmax()) == digit:
                samples.append(
                    {
                        "label": digit,
                        "pixels": pixels.tolist(),
                        "logits": [round(float(v), 6) for v in logits],
                    }
                )
                break

    out.mkdir(parents=True, exist_ok=True)
    model = to_onnx(mlp)
    onnx.save(model, out / "digits.onnx")
    document = {
        "about": "One held-out load_digits sample per digit: 28x28 pixels 0..255 (ink high, row-major); "
        "model input is pixels/255 as float32 [1,1,28,28]. Made by stacks/webgpu-demo/make_model.py.",
        "held_out_accuracy": round(accuracy, 4),
        "samples": samples,
    }
    (out / "samples.json").write_text(json.dumps(document, separators=(",", ":")) + "\n")
    return {
        "model": str(out / "digits.onnx"),
        "bytes": (out / "digits.onnx").stat().st_size,
        "held_out_accuracy": round(accuracy, 4),
        "samples": len(samples),
        "scikit_learn": sklearn.__version__,
        "onnx": onnx.__version__,
    }


if __name__ == "__main__":
    sys.exit(main())
