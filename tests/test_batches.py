"""A spec with a batch of samples: E is the mean (or sum) of the samples' losses, and every command knows it.

Every number is compared with PyTorch autograd on the same data (tests/batch_oracle.py, which never imports
derive), within 1e-9 relative.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from batch_oracle import compute, toml, train
from conftest import need_tex, require_torch

from derive.app.api import Model

REL = 1e-9


def xor(reduction: str) -> dict:
    """XOR's four samples through a 2-2-1 sigmoid network with half the squared error."""
    return {
        "X": [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]],
        "T": [[0.0], [1.0], [1.0], [0.0]],
        "layers": [
            {"W": [[0.5, -0.4], [0.3, 0.8]], "b": [0.1, -0.2], "activation": "sigmoid"},
            {"W": [[0.7, -0.6]], "b": [0.05], "activation": "sigmoid"},
        ],
        "loss": "half_sse",
        "reduction": reduction,
    }


def tanh_softmax(reduction: str) -> dict:
    """Five samples through a 3-4-3 network: tanh, then softmax with cross-entropy; one-hot targets."""
    rng = np.random.default_rng(7)
    return {
        "X": np.round(rng.uniform(-1, 1, (5, 3)), 3).tolist(),
        "T": np.eye(3)[[0, 2, 1, 2, 0]].tolist(),
        "layers": [
            {"W": np.round(rng.normal(0, 0.7, (4, 3)), 3).tolist(), "b": 0.15, "activation": "tanh"},
            {"W": np.round(rng.normal(0, 0.7, (3, 4)), 3).tolist(), "b": [0.1, -0.2, 0.05], "activation": "softmax"},
        ],
        "loss": "cross_entropy",
        "reduction": reduction,
    }


CASES = {
    "xor-mean": (xor("mean"), True),
    "xor-sum": (xor("sum"), True),
    "tanh-softmax-mean": (tanh_softmax("mean"), False),
    "tanh-softmax-sum": (tanh_softmax("sum"), False),
}


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    """Weights and biases in derive's order of parameter names: each layer's weights by row, then its bias."""
    return np.concatenate([np.ravel(a) for a in arrays])


def close(a: object, b: object, rel: float = REL) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(b), 1e-12)))


def derive_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(params=list(CASES))
def case(request, tmp_path):
    net, names = CASES[request.param]
    path = tmp_path / "batch.toml"
    path.write_text(toml(net, names=names))
    return net, path


def test_grad_all_is_the_reduced_gradient(case):
    torch = require_torch()
    net, path = case
    oracle = compute(torch, net)
    result = derive_cli("grad", str(path), "--all", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert close(data["loss"], oracle["E"])
    assert close(list(data["gradients"].values()), flat(oracle["grads"]))


def test_grad_shows_each_sample_then_their_mean_or_sum(case):
    torch = require_torch()
    net, path = case
    oracle = compute(torch, net)
    model = Model.load(path)
    names = model.spec.parameter_names
    for index in (0, len(names) - 1):  # a first-layer weight (paths through the hidden layer) and the last bias
        result = derive_cli("grad", str(path), names[index], "--format", "json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["samples"] == len(net["X"]) and data["reduction"] == net["reduction"]
        assert close(data["value"], flat(oracle["grads"])[index])
        per_sample = [flat(g)[index] for g in oracle["sample_grads"]]
        assert close([s["value"] for s in data["per_sample"]], per_sample)
    text = derive_cli("grad", str(path), names[0]).stdout
    assert f"over a batch of {len(net['X'])} samples" in text
    assert "every sample side by side" in text and f"the {net['reduction']} of the samples' gradients" in text


def test_train_is_full_batch_gradient_descent(case):
    torch = require_torch()
    net, path = case
    trained, history = train(torch, net, 200, 0.5)
    result = derive_cli("train", str(path), "--steps", "200", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert close(data["loss_before"], history[0])
    after = compute(torch, trained)
    assert close(data["loss"], after["E"], 1e-8)  # 200 steps of rounding in two implementations
    params = flat([np.array(v) for layer in trained["layers"] for v in (layer["W"], layer["b"])])
    assert close(list(data["parameters"].values()), params, 1e-8)
    assert close(data["outputs"], after["outs"][-1], 1e-8)


def test_exported_module_follows_the_reduction(case, tmp_path):
    torch = require_torch()
    net, path = case
    oracle = compute(torch, net)
    module_path = tmp_path / "exported.py"
    result = derive_cli("export", str(path), "-o", str(module_path))
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location("exported_batch", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert net["reduction"] == module.REDUCTION
    X, T = np.array(net["X"]), np.array(net["T"])
    params = module.init_params()
    loss, grads = module.loss_and_gradients(params, X, T)
    assert close(loss, oracle["E"]) and close(module.loss(params, X, T), oracle["E"])
    ours = [grads[key] for key in params]  # W2, b2, W3, b3: the order of the oracle's
    assert close(flat(ours), flat(oracle["grads"]))
    again = module.gradients(params, X, T)
    assert close(flat([again[key] for key in params]), flat(oracle["grads"]))


def test_check_names_a_sample_with_brackets(case):
    torch = require_torch()
    net, path = case
    oracle = compute(torch, net)
    model = Model.load(path)
    out = model.network.output_layer
    hidden = model.network.layers[1]
    first = model.spec.parameter_names[0]
    trained, _ = train(torch, net, 3, 0.5)
    after = flat([np.array(v) for layer in trained["layers"] for v in (layer["W"], layer["b"])])
    claims = {
        "E": oracle["E"],
        "E[2]": oracle["per_sample"][1],
        f"{out.outs[0].name}[3]": oracle["outs"][-1][2][0],
        f"{hidden.nets[1].name}[2]": oracle["nets"][0][1][1],
        f"delta_{hidden.neurons[0].label}[4]": oracle["sample_deltas"][3][0][0],
        f"dE/d{first}": flat(oracle["grads"])[0],
        f"dE/d{first}[5]" if len(net["X"]) > 4 else f"dE/d{first}[4]": flat(oracle["sample_grads"][-1])[0],
        f"{first}@3": after[0],
    }
    texts = [f"{name}={value:.10g}" for name, value in claims.items()]
    result = derive_cli("check", str(path), *texts, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(c["verdict"] == "ok" for c in json.loads(result.stdout)["claims"])
    wrong = derive_cli("check", str(path), f"E[2]={oracle['per_sample'][0]:.12g}")
    assert wrong.returncode == 1  # sample 1's loss claimed as sample 2's


def test_show_lists_every_sample(case):
    torch = require_torch()
    net, path = case
    oracle = compute(torch, net)
    result = derive_cli("show", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert close(data["loss"]["value"], oracle["E"]) and data["loss"]["reduction"] == net["reduction"]
    model = Model.load(path)
    out_name = model.network.output_layer.outs[0].name
    assert close([s[out_name] for s in data["samples"]], oracle["outs"][-1][:, 0])
    assert close([s["loss"] for s in data["samples"]], oracle["per_sample"])
    text = derive_cli("show", str(path)).stdout
    assert "every sample" in text and "loss of the batch" in text


def test_batch_lecture_shows_every_sample_and_the_combination(tmp_path):
    torch = require_torch()
    need_tex()
    net = xor("mean")
    path = tmp_path / "xor.toml"
    path.write_text(toml(net, names=True))
    oracle = compute(torch, net)
    pdf = tmp_path / "xor.pdf"
    result = derive_cli("lecture", str(path), "-o", str(pdf))
    assert result.returncode == 0, result.stderr
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "The samples" in text and "Combining the samples" in text
    for loss in oracle["per_sample"]:  # every sample's loss, to the 6 digits of the table of samples
        assert f"{loss:.6g}" in text
    assert f"{oracle['E']:.8g}" in text
    for value in flat(oracle["grads"]):
        shown = f"{value:.8g}"
        assert shown in text or "×" in text  # a tiny gradient is printed as m × 10^e
    assert f"{flat(oracle['grads'])[0]:.8g}" in text


def test_a_batch_of_one_is_the_single_sample():
    single = Model.load("mazur")
    text = Path(__file__).parents[1].joinpath("derive/examples/mazur.toml").read_text()
    text = text.replace("values = [0.05, 0.10]", "values = [[0.05, 0.10]]")
    text = text.replace("targets = [0.01, 0.99]", "targets = [[0.01, 0.99]]")
    assert "[[0.05, 0.10]]" in text and "[[0.01, 0.99]]" in text
    batch = Model.from_toml(text)
    assert batch.samples == 1 and not batch.is_batch
    assert batch.gradient_values() == single.gradient_values()
    assert batch.derivation("w5").value == single.derivation("w5").value


def test_random_values_give_a_batch_whose_first_sample_is_the_single_draw():
    spec = """
name = "drawn"
loss = "half_sse"
[[layers]]
size = 3
values = "random"
samples = 6
[[layers]]
size = 2
activation = "sigmoid"
targets = "random"
"""
    one = Model.from_toml(spec.replace("samples = 6\n", ""))
    six = Model.from_toml(spec)
    assert six.samples == 6 and len(six.spec.layers[-1].target_samples) == 6
    assert six.spec.layers[0].samples[0] == one.spec.layers[0].values
    assert six.spec.layers[-1].target_samples[0] == one.spec.layers[-1].targets
    assert len(set(six.spec.layers[0].samples)) == 6  # six different samples


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("targets = [[0], [1], [1], [0]]", "targets = [[0], [1], [1]]"), "3 samples of targets for 4 samples"),
        (("values = [[0, 0], [0, 1], [1, 0], [1, 1]]", "values = [[0, 0], 1]"), "mixes numbers and lists"),
        (("values = [[0, 0], [0, 1], [1, 0], [1, 1]]", "values = [[0, 0], [0, 1, 2]]"), "values[1]"),
        (('loss = "half_sse"', '[loss]\nkind = "half_sse"\nreduction = "meen"'), "did you mean 'mean'"),
        # the usual slips get the fix in the hint
        (("targets = [[0], [1], [1], [0]]", "targets = [0, 1, 1, 0]"), "a row of 1 target per sample"),
        (("values = [[0, 0], [0, 1], [1, 0], [1, 1]]", 'values = "random"'), "add samples = 4"),
        (("values = [[0, 0], [0, 1], [1, 0], [1, 1]]", "values = [[[0, 0]], [[1, 1]]]"), "a batch nests one level"),
    ],
)
def test_a_bad_batch_is_refused_with_its_key(tmp_path, change, message):
    path = tmp_path / "xor.toml"
    text = XOR_TOML.replace(*change)
    assert text != XOR_TOML
    path.write_text(text)
    result = derive_cli("show", str(path))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_per_sample_name_without_a_sample_suggests_one(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR_TOML)
    result = derive_cli("check", str(path), "out_y=0.5")
    assert result.returncode == 2 and "out_y[1]" in result.stderr
    result = derive_cli("check", str(path), "w_h1_x1[2]=0.5")
    assert result.returncode == 2 and "shared by every sample" in result.stderr
    result = derive_cli("grad", str(path), "net_h1")
    assert result.returncode == 2 and "net_h1[1]" in result.stderr
    result = derive_cli("grad", str(path), "net_h1[3]", "--format", "json")
    assert result.returncode == 0, result.stderr
    result = derive_cli("exercises", str(path), "--students", "2", "--seed", "1", "-o", str(tmp_path / "class"))
    assert result.returncode == 2 and "one sample" in result.stderr


XOR_TOML = """name = "xor"
loss = "half_sse"
[[layers]]
names = ["x1", "x2"]
values = [[0, 0], [0, 1], [1, 0], [1, 1]]
[[layers]]
names = ["h1", "h2"]
activation = "sigmoid"
weights = [[0.5, -0.4], [0.3, 0.8]]
bias = [0.1, -0.2]
[[layers]]
names = ["y"]
activation = "sigmoid"
weights = [[0.7, -0.6]]
bias = [0.05]
targets = [[0], [1], [1], [0]]
"""


def test_names_of_samples_are_checked_as_a_student_writes_them(tmp_path):
    path = tmp_path / "xor.toml"
    path.write_text(XOR_TOML)
    zero = derive_cli("check", str(path), "E[0]=0.1")
    assert zero.returncode == 2 and "no sample 0" in zero.stderr
    # ∂E/∂out_y has no batch value: it is one sample's
    bare = derive_cli("check", str(path), "dE/dout_y=0.1")
    assert bare.returncode == 2 and "dE/dout_y[1]" in bare.stderr
    # the lecture's ∂E^[2]/∂w is check's dE/dw[2]: one quantity, one value
    both = derive_cli("check", str(path), "dE[2]/dw_h1_x2=0.5", "dE/dw_h1_x2[2]=0.5", "--format", "json")
    claims = json.loads(both.stdout)["claims"]
    assert claims[0]["computed"] == claims[1]["computed"] and claims[0]["quantity"] == claims[1]["quantity"]


def test_grad_of_one_sample_says_which(tmp_path):
    torch = require_torch()
    net = xor("mean")
    path = tmp_path / "xor.toml"
    path.write_text(toml(net, names=True))
    oracle = compute(torch, net)
    model = Model.load(path)
    out = model.network.output_layer.outs[0].name
    data = json.loads(derive_cli("grad", str(path), f"{out}[2]", "--format", "json").stdout)
    assert data["sample"] == 2 and data["samples"] == 4
    # ∂E[2]/∂out[2] = out − target for half the squared error, sample 2's own
    assert close(data["value"], oracle["outs"][-1][1][0] - net["T"][1][0])
    assert derive_cli("grad", str(path), f"{out}[2]").stdout.startswith("sample 2 of 4 (")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("grad", "W3"), "δ3 (a2)ᵀ is one sample's"),
        (("lecture", "--exercises", "--format", "tex"), "exercises are worked on one sample"),
    ],
)
def test_what_belongs_to_one_sample_is_refused_for_a_batch(tmp_path, args, message):
    path = tmp_path / "xor.toml"
    path.write_text(XOR_TOML)
    command, *rest = args
    result = derive_cli(command, str(path), *rest)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_an_out_of_a_net_that_cancels_to_noise_is_shown_as_f_of_0():
    from derive.present.display import display_point

    text = """name = "noise"
loss = "half_sse"
[[layers]]
size = 2
values = [0.3, -0.15]
[[layers]]
size = 1
activation = "tanh"
weights = [[0.1, 0.2]]
[[layers]]
size = 1
activation = "linear"
weights = [[0.5]]
targets = [0.2]
"""
    model = Model.from_toml(text)
    point = model.point
    net, out = model.network.layers[1].neurons[0].net, model.network.layers[1].neurons[0].out
    assert point[net] != 0 and abs(point[net]) < 1e-16  # 0.1·0.3 − 0.2·0.15 in floats: rounding noise
    shown = display_point(model.network, point)
    assert shown[net] == 0.0 and shown[out] == 0.0  # tanh(0), not tanh of the noise
