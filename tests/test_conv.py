"""Convolution and pooling layers: a kernel weight is used at every position of its map, so its gradient is a
sum over those uses; a max pool routes δ to each window's winner, an average pool shares it out.

Every number is compared with PyTorch autograd on the same data (tests/conv_oracle.py, which never imports
derive), within 1e-9 relative: conv1d and conv2d, max and average pooling, stride and padding, a sample and
batches, through `grad --all`, `grad`, `train`, `check`, `show` and the exported module.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require, require_torch
from conv_oracle import compute, toml, train

REL = 1e-9


def _r(rng: np.random.Generator, *shape: int) -> list:
    return np.round(rng.uniform(-0.5, 0.5, shape), 4).tolist()


def nets() -> dict[str, dict]:
    """Small nets covering every kind, stride, padding, bias form and loss, each with its own data."""
    rng = np.random.default_rng(11)
    return {
        "conv2d-pad-maxpool-batch": {
            "shape": [1, 6, 6],
            "X": [_r(rng, 1, 6, 6) for _ in range(3)],
            "T": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            "loss": "cross_entropy",
            "reduction": "mean",
            "layers": [
                {"kind": "conv2d", "W": _r(rng, 2, 1, 3, 3), "b": _r(rng, 2), "padding": 1, "activation": "relu"},
                {"kind": "maxpool2d", "kernel": 2},
                {"kind": "dense", "W": _r(rng, 3, 18), "b": _r(rng, 3), "activation": "softmax"},
            ],
        },
        "conv2d-stride-avgpool-single": {
            "shape": [2, 5, 5],
            "X": [_r(rng, 2, 5, 5)],
            "single": True,
            "T": [[0.2, 0.9]],
            "loss": "half_sse",
            "reduction": "sum",
            "layers": [
                {"kind": "conv2d", "W": _r(rng, 3, 2, 3, 3), "b": 0.1, "stride": 2, "activation": "tanh"},
                {"kind": "avgpool2d", "kernel": 2, "stride": 1},
                {"kind": "dense", "W": _r(rng, 2, 3), "b": _r(rng, 2), "activation": "sigmoid"},
            ],
        },
        "conv1d-stride-pad-maxpool-batch": {
            "shape": [2, 8],
            "X": [_r(rng, 2, 8) for _ in range(2)],
            "T": [[0.2, 0.9], [0.5, 0.1]],
            "loss": "half_sse",
            "reduction": "mean",
            "layers": [
                {"kind": "conv1d", "W": _r(rng, 3, 2, 3), "stride": 2, "padding": 1, "activation": "tanh"},
                {"kind": "maxpool1d", "kernel": 2},
                {"kind": "dense", "W": _r(rng, 2, 6), "b": _r(rng, 2), "activation": "sigmoid"},
            ],
        },
        "conv1d-avgpool-single": {
            "shape": [1, 7],
            "X": [_r(rng, 1, 7)],
            "single": True,
            "T": [[0.3]],
            "loss": "half_sse",
            "reduction": "mean",
            "layers": [
                {"kind": "conv1d", "W": _r(rng, 2, 1, 2), "b": _r(rng, 2), "activation": "sigmoid"},
                {"kind": "avgpool1d", "kernel": 3, "stride": 2},
                {"kind": "dense", "W": _r(rng, 1, 4), "activation": "sigmoid"},
            ],
        },
        "two-convs-overlapping-pool": {
            "shape": [1, 7, 7],
            "X": [_r(rng, 1, 7, 7) for _ in range(2)],
            "T": [[1, 0], [0, 1]],
            "loss": "cross_entropy",
            "reduction": "sum",
            "layers": [
                {"kind": "conv2d", "W": _r(rng, 2, 1, 2, 2), "b": _r(rng, 2), "activation": "relu"},
                {"kind": "maxpool2d", "kernel": 3, "stride": 2},
                {
                    "kind": "conv2d",
                    "W": _r(rng, 2, 2, 2, 2),
                    "b": _r(rng, 2),
                    "stride": [1, 2],
                    "padding": [1, 0],
                    "activation": "sigmoid",
                },
                {"kind": "avgpool2d", "kernel": [2, 1], "stride": 1},
                {"kind": "dense", "W": _r(rng, 2, 4), "activation": "softmax"},
            ],
        },
    }


NETS = nets()


def close(a: object, b: object, rel: float = REL) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= rel * np.maximum(np.abs(b), 1e-12)))


def derive_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(params=list(NETS))
def case(request, tmp_path):
    net = NETS[request.param]
    path = tmp_path / "conv.toml"
    path.write_text(toml(net))
    return net, path


def test_every_gradient_equals_torchs(case):
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    out = derive_cli("grad", str(path), "--all", "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["gradients"]
    assert set(got) == set(want["grads"])
    for name, value in want["grads"].items():
        assert close(got[name], value), (name, got[name], value)


def test_the_exported_module_equals_torch(case, tmp_path):
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    module_path = tmp_path / "convmod.py"
    out = derive_cli("export", str(path), "-o", str(module_path))
    assert out.returncode == 0, out.stderr
    spec = importlib.util.spec_from_file_location("convmod", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = module.init_params()
    X = np.array(net["X"], dtype=float)
    T = np.array(net["T"], dtype=float)
    assert X.ndim == len(net["shape"]) + 1  # (batch, C, H, W) or (batch, C, L)
    loss, grads = module.loss_and_gradients(params, X, T)
    assert close(loss, want["E"])
    for name, (key, index) in module.PARAMETER_INDEX.items():
        assert close(grads[key][index], want["grads"][name]), name
    assert set(module.PARAMETER_INDEX) == set(want["grads"])
    assert params["W2"].shape == np.array(net["layers"][0]["W"]).shape  # torch's Conv weight layout


def test_a_kernel_weights_gradient_is_the_sum_over_its_uses(case):
    """One kernel weight's JSON, sample by sample: its uses counted on the map, the δ map (torch's δ of the conv
    layer) beside the inputs it multiplies (the input under the kernel entry), whose products sum to the value."""
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    two_d = len(net["shape"]) == 3
    name = "w2_1_1_1_1" if two_d else "w2_1_1_1"
    out = derive_cli("grad", str(path), name, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    samples = data.get("per_sample") or [data]
    assert len(samples) == len(net["X"])
    layer = net["layers"][0]
    stride = layer.get("stride", 1)
    stride = stride if isinstance(stride, list) else [stride] * (2 if two_d else 1)
    padding = layer.get("padding", 0)
    padding = padding if isinstance(padding, list) else [padding] * (2 if two_d else 1)
    for n, sample in enumerate(samples):
        uses = sample["uses"]
        deltas = np.array(uses["delta_maps"][0], dtype=float)  # channel 1; nan: not a use (on the padding)
        inputs = np.array(uses["factor_maps"][0], dtype=float)
        grid = deltas.shape
        torch_delta = np.array(want["delta"][0][n]).reshape(-1, *grid)[0]
        used = ~np.isnan(deltas)
        assert close(deltas[used], torch_delta[used])
        # the input under kernel entry (1, 1) at each position, read from the sample itself (zero padding)
        x = np.pad(np.array(net["X"][n], dtype=float)[0], [(p, p) for p in padding])
        taken = x[tuple(slice(0, g * s, s) for g, s in zip(grid, stride))]
        assert close(inputs[used], taken[used])
        assert uses["count"] == int(used.sum()) == int((taken != 0).sum() + (taken == 0).sum() - (~used).sum())
        assert close(np.sum(deltas[used] * inputs[used]), sample["value"])
    assert close(data["value"], want["grads"][name])


def test_training_follows_torch(case):
    torch = require_torch()
    net, path = case
    rate = 0.1
    want = train(torch, net, 5, rate)
    out = derive_cli("train", str(path), "--steps", "5", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    got = data["parameters"]
    for name, value in want.items():
        assert close(got[name], value, 1e-8), name


def test_check_knows_the_maps_names(case):
    """Feature maps named z2_c_r_k and a2_c_r_k (with [n] in a batch), E and a kernel weight's gradient, all
    claimed with torch's numbers to 12 digits, are ok (check judges exactly: float64's 17th digit is noise)."""
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    n = len(net["X"])
    suffix = "" if net.get("single") else f"[{n}]"
    first = "1_1_1" if len(net["shape"]) == 3 else "1_1"
    weight = "w2_1_1_1_1" if len(net["shape"]) == 3 else "w2_1_1_1"
    claims = [
        f"z2_{first}{suffix}={want['z'][0][n - 1][0]:.12g}",
        f"a2_{first}{suffix}={want['a'][0][n - 1][0]:.12g}",
        f"a3_{first}{suffix}={want['a'][1][n - 1][0]:.12g}",
        f"E={want['E']:.12g}",
        f"dE/d{weight}={want['grads'][weight]:.12g}",
    ]
    out = derive_cli("check", str(path), *claims, "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(out.stdout)["claims"]
    assert [r["verdict"] for r in rows] == ["ok"] * len(claims), rows


BAD = {
    "kernel larger than the padded input": (
        '[[layers]]\nkind = "conv2d"\nchannels = 1\nkernel = 5\npadding = 0\nactivation = "relu"\n',
        "layers[1].kernel",
    ),
    "stride 0": (
        '[[layers]]\nkind = "conv2d"\nchannels = 1\nkernel = 2\nstride = 0\nactivation = "relu"\n',
        "layers[1].stride",
    ),
    "zero channels": (
        '[[layers]]\nkind = "conv2d"\nchannels = 0\nkernel = 2\nactivation = "relu"\n',
        "layers[1].channels",
    ),
    "weights of the wrong shape": (
        '[[layers]]\nkind = "conv2d"\nchannels = 2\nkernel = 2\nactivation = "relu"\nweights = [[[[0.1, 0.2], [0.3, 0.4]]]]\n',
        "layers[1].weights",
    ),
}


def _bad_spec(tmp_path: Path, middle: str) -> Path:
    text = (
        'name = "bad"\n[loss]\nkind = "half_sse"\n[[layers]]\nshape = [1, 4, 4]\nvalues = "random"\n'
        + middle
        + '[[layers]]\nsize = 1\nactivation = "sigmoid"\ntargets = [0.5]\n'
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("what", list(BAD))
def test_bad_map_layers_are_refused_at_their_key(tmp_path, what):
    middle, key = BAD[what]
    out = derive_cli("grad", str(_bad_spec(tmp_path, middle)), "--all")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert key in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3


def test_a_conv_after_a_dense_layer_is_refused(tmp_path):
    middle = '[[layers]]\nsize = 4\nactivation = "relu"\n[[layers]]\nkind = "conv1d"\nchannels = 1\nkernel = 2\nactivation = "relu"\n'
    out = derive_cli("grad", str(_bad_spec(tmp_path, middle)), "--all")
    assert out.returncode == 2
    assert "layers[2].kind" in out.stderr and "after a dense layer" in out.stderr


def test_a_misspelled_kind_gets_a_suggestion(tmp_path):
    middle = '[[layers]]\nkind = "conv2"\nchannels = 1\nkernel = 2\nactivation = "relu"\n'
    out = derive_cli("grad", str(_bad_spec(tmp_path, middle)), "--all")
    assert out.returncode == 2
    assert "conv2d" in out.stderr


def test_a_conv_net_learns_the_digits(tmp_path):
    """scikit-learn's 8×8 digits through conv 8@3×3 (padding 1) → max pool 2 → dense 10 softmax, Adam at 0.01:
    at least 93 % of the held-out quarter right after 10 epochs (measured 96.0 %)."""
    require("sklearn", "data")
    spec = tmp_path / "digitsconv.toml"
    spec.write_text(
        'name = "digitsconv"\n[loss]\nkind = "cross_entropy"\n[training]\noptimizer = "adam"\nlearning_rate = 0.01\n'
        "[[layers]]\nshape = [1, 8, 8]\n"
        '[[layers]]\nkind = "conv2d"\nchannels = 8\nkernel = 3\npadding = 1\nactivation = "relu"\nbias = "per_neuron"\n'
        '[[layers]]\nkind = "maxpool2d"\nkernel = 2\n'
        '[[layers]]\nsize = 10\nactivation = "softmax"\nbias = "per_neuron"\n'
    )
    out = derive_cli(
        "fit", str(spec), "--data", "digits", "--epochs", "10", "-o", str(tmp_path / "p.npz"), "--format", "json"
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["test_accuracy"] >= 0.93, summary


def test_a_conv_layers_whole_matrix_is_refused_with_the_way_to_ask():
    """∂E/∂W2 of a conv is no δ·aᵀ outer product (each kernel weight is used at many positions)."""
    out = derive_cli("grad", "tinyconv", "W2")
    assert out.returncode == 2
    assert "no δ·aᵀ outer product" in out.stderr and "w2_1_1_1_1" in out.stderr


def saved_accuracy(tmp_path, spec, params_file, shape):
    """The held-out-free accuracy on every digit of the saved parameters, fed the way the warning says: the
    inputs scaled as (X − shift)/scale with the saved shift and scale, then shaped as the module takes them."""
    from sklearn.datasets import load_digits

    module_file = tmp_path / "module.py"
    assert derive_cli("export", str(spec), "-o", str(module_file)).returncode == 0
    loaded = importlib.util.spec_from_file_location("fitted", module_file)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    params = dict(np.load(params_file))
    scaling = np.load(params_file.with_name(params_file.stem + ".scaling.npz"))
    digits = load_digits()
    X = ((digits.data - scaling["shift"]) / scaling["scale"]).reshape(-1, *shape)
    T = np.eye(10)[digits.target]
    return module.accuracy(params, X, T)


def test_fit_saves_the_scaling_a_conv_cannot_absorb_beside_the_parameters(tmp_path):
    require("sklearn", "data")
    spec = tmp_path / "digitsconv.toml"
    spec.write_text(
        'name = "digitsconv"\n[loss]\nkind = "cross_entropy"\n[training]\noptimizer = "adam"\nlearning_rate = 0.01\n'
        "[[layers]]\nshape = [1, 8, 8]\n"
        '[[layers]]\nkind = "conv2d"\nchannels = 4\nkernel = 3\nactivation = "relu"\nbias = "per_neuron"\n'
        '[[layers]]\nsize = 10\nactivation = "softmax"\nbias = "per_neuron"\n'
    )
    params = tmp_path / "p.npz"
    out = derive_cli("fit", str(spec), "--data", "digits", "--epochs", "5", "-o", str(params))
    assert out.returncode == 0, out.stderr
    assert "shift and scale saved in" in out.stderr and "p.scaling.npz" in out.stderr
    assert saved_accuracy(tmp_path, spec, params, (1, 8, 8)) >= 0.9


def test_show_describes_map_layers_in_json_and_a_max_pools_window_in_text():
    out = derive_cli("show", "tinyconv", "--format", "json")
    assert out.returncode == 0, out.stderr
    layers = json.loads(out.stdout)["layers"]
    conv, pool, dense = layers[1], layers[2], layers[3]
    assert conv["kind"] == "conv2d" and conv["shape"] == [2, 3, 3] and conv["kernel"] == [2, 2]
    # torch's Conv2d.weight layout [out][in][kh][kw], named w2_o_i_r_c
    assert conv["weights"] == [[[[f"w2_{o}_1_{r}_{c}" for c in (1, 2)] for r in (1, 2)]] for o in (1, 2)]
    assert pool["kind"] == "maxpool2d" and "weights" not in pool and pool["activation"] is None
    assert dense["kind"] == "dense" and len(dense["weights"]) == 2 and len(dense["weights"][0]) == 8
    text = derive_cli("show", "tinyconv").stdout
    line = " ".join(text[text.index("  z3_1_1_1 = ") :].split("\n  a3_1_1_1")[0].split())
    # the 2×2 window at the top left of map 1 (stride 1), in torch's order; the max of its relu outputs
    assert line.startswith("z3_1_1_1 = max(a2_1_1_1, a2_1_1_2, a2_1_2_1, a2_1_2_2) = max(")
    x = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 0.1, 0.2], [0.3, 0.4, 0.5, 0.6]])
    k = np.array([[0.1, -0.2], [0.3, 0.4]])
    a = [max(0.0, float((x[r : r + 2, c : c + 2] * k).sum() + 0.1)) for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))]
    winner = ["a2_1_1_1", "a2_1_1_2", "a2_1_2_1", "a2_1_2_2"][int(np.argmax(a))]
    assert line.endswith(f"(the first largest: {winner})") and f"= {max(a):.8g}" in line


def test_the_exported_module_says_what_each_layer_is(tmp_path):
    """A pool is no linear layer: it has no weights, bias or activation; a conv names its maps and kernels."""
    path = tmp_path / "m.py"
    assert derive_cli("export", "tinyconv", "-o", str(path)).returncode == 0
    loaded = importlib.util.spec_from_file_location("tinyconv_module", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    doc = module.__doc__
    assert "layer 1: 1 map of 4×4, X of shape (batch, 1, 4, 4)" in doc
    assert "layer 2: conv2d 2×2 → 2 maps of 3×3, kernels W2, relu" in doc and "a bias per channel" in doc
    assert "layer 3: maxpool2d 2×2 stride 1×1 → 2 maps of 2×2 (no weights, bias or activation)" in doc
    assert module.ACTIVATIONS == ("relu", None, "sigmoid")
