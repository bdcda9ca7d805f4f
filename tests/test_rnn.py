"""Recurrent layers: backpropagation through time. A weight is used at every time step, so its gradient is a sum
over time; each step's δ comes from the step after it.

Every number is compared with PyTorch autograd on the same data (tests/rnn_oracle.py, a loop of torch operations
that never imports derive), within 1e-9 relative: one sample and batches, different T, D and H, tanh, sigmoid
and relu, through `grad --all`, `grad`, `train`, `check` and the exported module.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import require, require_torch
from rnn_oracle import compute, toml, train

REL = 1e-9


def _r(rng: np.random.Generator, *shape: int) -> list:
    return np.round(rng.uniform(-0.6, 0.6, shape), 4).tolist()


def nets() -> dict[str, dict]:
    rng = np.random.default_rng(23)
    return {
        "tanh-T4-D2-H3-single": {
            "X": [_r(rng, 4, 2)],
            "single": True,
            "T": [[0.8]],
            "loss": "half_sse",
            "reduction": "mean",
            "rnn": {"W": _r(rng, 3, 2), "U": _r(rng, 3, 3), "b": _r(rng, 3), "activation": "tanh"},
            "out": {"W": _r(rng, 1, 3), "b": _r(rng, 1), "activation": "sigmoid"},
        },
        "sigmoid-T5-D3-H4-batch-softmax": {
            "X": [_r(rng, 5, 3) for _ in range(3)],
            "T": [[1, 0], [0, 1], [1, 0]],
            "loss": "cross_entropy",
            "reduction": "sum",
            "rnn": {"W": _r(rng, 4, 3), "U": _r(rng, 4, 4), "b": None, "activation": "sigmoid"},
            "out": {"W": _r(rng, 2, 4), "b": _r(rng, 2), "activation": "softmax"},
        },
        "relu-T3-D1-H2-batch": {
            "X": [_r(rng, 3, 1) for _ in range(2)],
            "T": [[0.3], [0.6]],
            "loss": "half_sse",
            "reduction": "mean",
            "rnn": {"W": _r(rng, 2, 1), "U": _r(rng, 2, 2), "b": _r(rng, 2), "activation": "relu"},
            "out": {"W": _r(rng, 1, 2), "b": None, "activation": "sigmoid"},
        },
        "tanh-T8-D2-H5-batch": {
            "X": [_r(rng, 8, 2) for _ in range(4)],
            "T": [[0.1, 0.9], [0.5, 0.5], [0.9, 0.2], [0.3, 0.3]],
            "loss": "half_sse",
            "reduction": "mean",
            "rnn": {"W": _r(rng, 5, 2), "U": _r(rng, 5, 5), "b": _r(rng, 5), "activation": "tanh"},
            "out": {"W": _r(rng, 2, 5), "b": _r(rng, 2), "activation": "sigmoid"},
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
    path = tmp_path / "rnn.toml"
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
    module_path = tmp_path / "rnnmod.py"
    out = derive_cli("export", str(path), "-o", str(module_path))
    assert out.returncode == 0, out.stderr
    spec = importlib.util.spec_from_file_location("rnnmod", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = module.init_params()
    assert (
        params["W2"].shape == np.array(net["rnn"]["W"]).shape and params["U2"].shape == np.array(net["rnn"]["U"]).shape
    )
    X, T = np.array(net["X"], dtype=float), np.array(net["T"], dtype=float)  # X: (batch, T, D)
    loss, grads = module.loss_and_gradients(params, X, T)
    assert close(loss, want["E"])
    assert set(module.PARAMETER_INDEX) == set(want["grads"])
    for name, (key, index) in module.PARAMETER_INDEX.items():
        assert close(grads[key][index], want["grads"][name]), name


def test_a_weights_gradient_is_the_sum_over_time(case):
    """grad of a recurrent or input weight: one term per step, each δ_t (torch's ∂E/∂z_t) times what the weight
    multiplies at that step (x_t,k, or the state h_(t−1),k), summing to torch's gradient."""
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    for name in [n for n in ("u2_1_2", "w2_2_1", "b2_1") if n in want["grads"]]:  # one net has no rnn bias
        _sum_over_time(net, path, want, name)


def _sum_over_time(net: dict, path, want: dict, name: str) -> None:
    out = derive_cli("grad", str(path), name, "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert close(data["value"], want["grads"][name])
    samples = data.get("per_sample") or [data]
    steps = len(net["X"][0])
    j = int(name.split("_")[1]) - 1
    for n, sample in enumerate(samples):
        uses = sample["uses"]
        deltas = np.array(uses["delta_maps"][0], dtype=float)
        factors = np.array(uses["factor_maps"][0], dtype=float)
        assert deltas.shape == (steps,)
        torch_deltas = np.array(want["deltas"][n])[:, j]
        used = ~np.isnan(deltas)
        assert close(deltas[used], torch_deltas[used])
        if name.startswith("u"):
            assert not used[0] and used[1:].all()  # h_0 = 0: no use at the first step
            k = int(name.split("_")[2]) - 1
            assert close(factors[1:], np.array(want["states"][n])[:-1, k])
        elif name.startswith("w"):
            k = int(name.split("_")[2]) - 1
            assert close(factors, np.array(net["X"][n])[:, k])
        assert close(np.sum(deltas[used] * factors[used]), sample["value"])


def test_training_follows_torch(case):
    torch = require_torch()
    net, path = case
    want = train(torch, net, 5, 0.1)
    out = derive_cli("train", str(path), "--steps", "5", "--format", "json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)["parameters"]
    for name, value in want.items():
        assert close(got[name], value, 1e-8), name


def test_check_knows_the_states_names(case):
    """States, E and a recurrent weight's gradient claimed with torch's numbers to 12 digits are ok (check
    judges exactly: float64's 17th digit is noise)."""
    torch = require_torch()
    net, path = case
    want = compute(torch, net)
    n = len(net["X"])
    suffix = "" if net.get("single") else f"[{n}]"
    steps = len(net["X"][0])
    claims = [
        f"z2_1_t{steps}{suffix}={want['nets'][n - 1][-1][0]:.12g}",
        f"a2_1_t1{suffix}={want['states'][n - 1][0][0]:.12g}",
        f"E={want['E']:.12g}",
        f"dE/du2_1_1={want['grads']['u2_1_1']:.12g}",
    ]
    out = derive_cli("check", str(path), *claims, "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(out.stdout)["claims"]
    assert [r["verdict"] for r in rows] == ["ok"] * len(claims), rows


HEAD = 'name = "bad"\n[loss]\nkind = "half_sse"\n'
TAIL = '[[layers]]\nsize = 1\nactivation = "sigmoid"\ntargets = [0.5]\n'
SEQUENCE = '[[layers]]\nshape = [3, 2]\nvalues = "random"\n'
RNN = '[[layers]]\nkind = "rnn"\nsize = 2\nactivation = "tanh"\n'
BAD = {
    "recurrent weights of the wrong shape": (
        SEQUENCE
        + RNN
        + "weights = [[0.1, 0.2], [0.3, 0.4]]\nrecurrent_weights = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]\n"
        + TAIL,
        "layers[1].recurrent_weights",
    ),
    "an input without a [T, D] shape": ('[[layers]]\nsize = 4\nvalues = "random"\n' + RNN + TAIL, "layers[1].kind"),
    "size 0": (SEQUENCE + '[[layers]]\nkind = "rnn"\nsize = 0\nactivation = "tanh"\n' + TAIL, "layers[1].size"),
    "an rnn after an rnn": (SEQUENCE + RNN + RNN + TAIL, "layers[2].kind"),
    "a loss at every step (an rnn output layer)": (SEQUENCE + RNN + "targets = [0.5, 0.5]\n", "layers[1].kind"),
    "weights without recurrent_weights": (
        SEQUENCE + RNN + "weights = [[0.1, 0.2], [0.3, 0.4]]\n" + TAIL,
        "layers[1].recurrent_weights",
    ),
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_rnn_specs_are_refused_at_their_key(tmp_path, what):
    body, key = BAD[what]
    path = tmp_path / "bad.toml"
    path.write_text(HEAD + body)
    out = derive_cli("grad", str(path), "--all")
    assert out.returncode == 2, out.stdout
    assert "Traceback" not in out.stderr
    assert key in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3


def test_the_array_api_module_on_torch_tensors_equals_torch(case, tmp_path):
    """`export --backend array-api`: PyTorch float64 tensors in, tensors out, gradients equal to autograd's."""
    torch = require_torch()
    require("array_api_compat", "array")
    net, path = case
    want = compute(torch, net)
    module_path = tmp_path / "rnnapi.py"
    out = derive_cli("export", str(path), "--backend", "array-api", "-o", str(module_path))
    assert out.returncode == 0, out.stderr
    spec = importlib.util.spec_from_file_location("rnnapi", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    X = torch.tensor(net["X"], dtype=torch.float64)
    T = torch.tensor(net["T"], dtype=torch.float64)
    params = module.init_params(like=X)
    loss, grads = module.loss_and_gradients(params, X, T)
    assert isinstance(loss, torch.Tensor) and all(isinstance(g, torch.Tensor) for g in grads.values())
    assert close(float(loss), want["E"])
    for name, (key, index) in module.PARAMETER_INDEX.items():
        assert close(float(grads[key][index]), want["grads"][name]), name
    numpy_grads = module.gradients(module.init_params(), np.array(net["X"]), np.array(net["T"]))
    for name, (key, index) in module.PARAMETER_INDEX.items():
        assert close(numpy_grads[key][index], want["grads"][name]), name


def test_whole_matrices_of_an_rnn_are_refused_and_u_is_known(tmp_path):
    path = tmp_path / "rnn.toml"
    path.write_text(toml(NETS["tanh-T4-D2-H3-single"]))
    for key in ("W2", "U2"):
        out = derive_cli("grad", str(path), key)
        assert out.returncode == 2 and "an rnn layer" in out.stderr, out.stderr
    out = derive_cli("grad", "mazur", "U2")
    assert out.returncode == 2 and "not recurrent" in out.stderr


def test_fit_trains_an_rnn_on_the_digits_rows_as_sequences_and_saves_its_scaling(tmp_path):
    """Each 8×8 digit read as 8 steps of 8 pixels. The standard scaling, one per pixel, cannot be folded into W2
    (shared by every step): it is saved beside the parameters, and with it they classify the digits."""
    require("sklearn", "data")
    from test_conv import saved_accuracy

    spec = tmp_path / "drnn.toml"
    spec.write_text(
        'name = "drnn"\n[loss]\nkind = "cross_entropy"\n[training]\noptimizer = "adam"\nlearning_rate = 0.01\n'
        '[[layers]]\nshape = [8, 8]\n[[layers]]\nkind = "rnn"\nsize = 32\nactivation = "tanh"\nbias = "per_neuron"\n'
        '[[layers]]\nsize = 10\nactivation = "softmax"\nbias = "per_neuron"\n'
    )
    params = tmp_path / "p.npz"
    out = derive_cli("fit", str(spec), "--data", "digits", "--epochs", "5", "-o", str(params))
    assert out.returncode == 0, out.stderr
    assert "is recurrent" in out.stderr and "p.scaling.npz" in out.stderr
    assert saved_accuracy(tmp_path, spec, params, (8, 8)) >= 0.85


@pytest.mark.parametrize(
    ("shape", "units", "words"),
    [
        ("[2000, 1]", 48, "an rnn of 48 units over 2,000 steps has 96,000 states (T·H); the limit is 2,048 (rnn state"),
        (
            "[1, 300]",
            64,
            "of 300 features has 23,360 weights and biases (H·(D + H + 1)); the limit is 4,096 (rnn param",
        ),
        ("[25, 95]", 32, "uses its weights and biases T·H·(D + H + 1) = 102,400 times; the limit is 100,000 (rnn work"),
    ],
)
def test_an_rnn_too_long_or_too_wide_to_work_by_hand_is_refused_by_the_commands_that_work_its_states(
    tmp_path, shape, units, words
):
    """T = 2000 steps of 48 units ran `grad` for minutes (≈ 1 ms a state), 300 features a lecture for 100 s: grad,
    lecture, exercises and check refuse it with one line and exit 2; the spec is read, and export, train and show
    (no state by state work) take it."""
    spec = tmp_path / "long.toml"
    text = f"{HEAD}[[layers]]\nshape = {shape}\nvalues = 'random'\n"
    spec.write_text(text + f"[[layers]]\nkind = 'rnn'\nsize = {units}\nactivation = 'tanh'\n{TAIL}")
    for command in (["grad", str(spec), "u2_1_1"], ["lecture", str(spec), "-o", str(tmp_path / "l.html")]):
        out = derive_cli(*command)
        assert out.returncode == 2, out.stderr
        assert f"layers[1].size: derive {command[0]} works every state by itself" in out.stderr and words in out.stderr
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "l.html").exists()
    out = derive_cli("check", str(spec), "E=1")
    assert out.returncode == 2 and "derive check works every state" in out.stderr
    module = tmp_path / "m.py"
    assert derive_cli("export", str(spec), "-o", str(module)).returncode == 0 and module.exists()


def test_an_rnn_at_its_limits_is_read():
    from derive.spec.reading import parse_spec

    for shape, units in (("[2048, 1]", 1), ("[24, 95]", 32), ("[45, 1]", 45)):
        text = f"{HEAD}[[layers]]\nshape = {shape}\nvalues = 'random'\n"
        parse_spec(text + f"[[layers]]\nkind = 'rnn'\nsize = {units}\nactivation = 'tanh'\n{TAIL}", "ok.toml")
