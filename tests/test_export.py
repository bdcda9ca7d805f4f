"""Exported NumPy modules: correct for any spec, importable with numpy alone, stable, safe."""

import ast
import json
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require, require_torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracles import (
    Net,
    agrees_with_finite_differences,
    backprop,
    finite_differences,
    mazur,
    relative_error,
    torch_gradients,
    train,
)
from strategies import networks

from derive.app.api import Model
from derive.app.cli import main
from derive.codegen.modules import scalar_module, vector_module
from derive.errors import TooLargeError
from derive.spec.reading import builtin_example_text, parse_spec

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(source, name="generated"):
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def exported(net: Net):
    return load(vector_module(Model(parse_spec(net.toml()))))


def flat(grads, net: Net):
    """The module's gradients in the oracle's flat order."""
    parts = []
    for i in range(len(net.activations)):
        parts.append(np.asarray(grads[f"W{i + 2}"]).ravel())
        if net.bias_kinds[i] != "none":
            parts.append(np.atleast_1d(grads[f"b{i + 2}"]).ravel())
    return np.concatenate(parts)


def batch_of(net: Net, rows: int, seed: int):
    """A batch whose first row is the net's own sample; the other rows are drawn like it."""
    rng = np.random.default_rng(seed)
    X = np.vstack([net.x, rng.uniform(-1, 1, (rows - 1, net.x.size))])
    T = np.vstack([net.t] + [rng.permutation(net.t) for _ in range(rows - 1)])  # keeps Σt = 1 and t in range
    return X, T


def per_row(net: Net, X, T, oracle):
    """Mean over rows of an oracle's (loss, flat gradient)."""
    losses, grads = [], []
    for x, t in zip(X, T):
        row = Net(**{**net.__dict__, "x": x, "t": t})
        e, g = oracle(row)
        losses.append(e)
        grads.append(g)
    return float(np.mean(losses)), np.mean(grads, axis=0)


@SETTINGS
@given(networks(), st.integers(1, 4), st.integers(0, 1000))
def test_exported_gradients_agree_with_pytorch_and_finite_differences(net, rows, seed):
    module = exported(net)
    X, T = batch_of(net, rows, seed)
    params = module.init_params()
    e, grads = module.loss_and_gradients(params, X, T)
    assert np.array_equal(flat(module.gradients(params, X, T), net), flat(grads, net))
    assert abs(module.loss(params, X, T) - e) <= 1e-12 * max(1, abs(e))
    assert np.allclose(module.forward(params, X)[0], backprop(net)[2]["a"][-1], rtol=1e-12, atol=1e-15)
    _, fd = per_row(net, X, T, lambda n: (0.0, finite_differences(n)))
    assert agrees_with_finite_differences(flat(grads, net), fd)
    require_torch()
    e_torch, g_torch = per_row(net, X, T, torch_gradients)
    assert abs(e - e_torch) <= 1e-9 * max(1, abs(e_torch))
    assert relative_error(flat(grads, net), g_torch) < 1e-9


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(max_hidden=2, max_width=3))
def test_scalar_module_agrees_with_the_vector_module(net):
    model = Model(parse_spec(net.toml()))
    vector = load(vector_module(model))
    try:
        scalar = load(scalar_module(model), "scalar")
    except TooLargeError:
        assume(False)  # the closed forms of this net are too big to write out: refused, as designed
    params = vector.init_params()
    grads = vector.gradients(params, net.x[None, :], net.t[None, :])
    values = dict(zip([f"x{j + 1}" for j in range(net.x.size)], net.x))
    values |= dict(zip([f"y{j + 1}" for j in range(net.t.size)], net.t))
    values |= dict(zip(net.parameter_names(), net.flat()))
    assert set(values) == set(scalar.ARGUMENTS)
    closed = scalar.gradients(**values)
    for name, (key, index) in vector.PARAMETER_INDEX.items():
        expected = grads[key][index]
        assert closed[name] == pytest.approx(expected, rel=1e-9, abs=1e-13)
        assert getattr(scalar, f"dE_d{name}")(**values) == pytest.approx(expected, rel=1e-9, abs=1e-13)


def test_mazur_export_reproduces_the_engine_and_the_oracle():
    model = Model.load("mazur")
    module = load(vector_module(model))
    assert module.PARAMETER_INDEX["w5"] == ("W3", (0, 0))
    assert module.PARAMETER_INDEX["b1"] == ("b2", ())
    params = module.init_params()
    X, T = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    grads = module.gradients(params, X, T)
    _, expected, _ = backprop(mazur())
    _, engine = model.gradients()
    for k, (name, (key, index)) in enumerate(module.PARAMETER_INDEX.items()):
        assert grads[key][index] == pytest.approx(expected[k], rel=1e-12)
        assert grads[key][index] == pytest.approx(engine[name], rel=1e-12)
    stepped = module.train_step(params, X, T)
    trained, _ = train(mazur(), 1)
    for k, (key, index) in enumerate(module.PARAMETER_INDEX.values()):
        assert stepped[key][index] == pytest.approx(trained.flat()[k], rel=1e-12)
    assert stepped["b2"] == params["b2"]  # Mazur does not update biases


def test_seeded_initialisation_is_the_same_in_derive_and_the_module():
    spec = parse_spec(builtin_example_text("nielsen_tanh"))
    from derive.core.init import weights

    module = load(vector_module(Model(spec)))
    params = module.init_params()
    for i in range(1, len(spec.layers)):
        assert np.array_equal(params[f"W{i + 1}"], weights(spec, i))


@pytest.mark.parametrize(
    ("builtin", "formula"), [("sigmoid", "1/(1 + exp(-x))"), ("tanh", "tanh(x)"), ("softplus", "log(1 + exp(x))")]
)
def test_a_custom_formula_identical_to_a_built_in_exports_the_same_gradients(builtin, formula):
    text = builtin_example_text("swish").replace('activation = "x/(1 + exp(-x))"', f'activation = "{builtin}"')
    a = load(vector_module(Model(parse_spec(text))))
    b = load(vector_module(Model(parse_spec(text.replace(f'activation = "{builtin}"', f'activation = "{formula}"')))))
    X = np.random.default_rng(0).uniform(-2, 2, (5, 2))
    T = np.random.default_rng(1).uniform(-1, 1, (5, 1))
    ga, gb = a.gradients(a.init_params(), X, T), b.gradients(b.init_params(), X, T)
    for key in ga:
        np.testing.assert_allclose(ga[key], gb[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("example", ["mazur", "softmax", "swish", "nielsen_tanh", "chain_221"])
def test_modules_import_with_numpy_alone_pass_ruff_and_are_stable(tmp_path, example):
    model = Model.load(example)
    for style, source in (("vector", vector_module(model)), ("scalar", scalar_module(model))):
        assert source == (vector_module(model) if style == "vector" else scalar_module(model))
        imports = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert [(a.name, a.asname) for n in imports for a in n.names] == [("numpy", "np")]
        path = tmp_path / f"{example}_{style}.py"
        path.write_text(source)
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(path)],
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout
        code = "import sys\n"
        code += "for blocked in ('sympy', 'derive', 'jinja2', 'click', 'torch', 'scipy'): sys.modules[blocked] = None\n"
        code += f"sys.path.insert(0, {str(tmp_path)!r})\n"
        code += f"import {example}_{style} as m\n"
        if style == "vector":
            code += "import numpy\nm.gradients(m.init_params(), numpy.zeros((1, m.SIZES[0])), numpy.zeros((1, m.SIZES[-1])))\n"
        code += "print(sorted(k for k, v in sys.modules.items() if v is not None and k.split('.')[0] in ('sympy', 'derive')))\n"
        proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[]"


def test_float32_stays_float32():
    module = load(vector_module(Model.load("softmax")))
    params = {k: v.astype(np.float32) for k, v in module.init_params().items()}
    X = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
    T = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    grads = module.gradients(params, X, T)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert module.forward(params, X).dtype == np.float32
    assert module.loss(params, X, T).dtype == np.float32


@pytest.mark.parametrize(
    "activation", ["sigmoid", "softplus", "tanh", "relu", "x/(1 + exp(-x))", "x*tanh(log(1 + exp(x)))"]
)
def test_no_overflow_warnings_at_plus_minus_1000(activation):
    text = (
        "name = 'wide'\n[loss]\nkind = 'cross_entropy'\n[[layers]]\nsize = 2\n"
        f"[[layers]]\nsize = 3\nactivation = '{activation}'\nweights = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]\nbias = 'per_neuron'\n"
        "[[layers]]\nsize = 2\nactivation = 'softmax'\nweights = [[5.0, -5.0, 2.0], [-5.0, 5.0, -2.0]]\n"
    )
    module = load(vector_module(Model(parse_spec(text))))
    X = np.array([[1000.0, -1000.0], [-1000.0, 1000.0], [1000.0, 1000.0], [-1000.0, -1000.0]])
    T = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params = module.init_params()
        e, grads = module.loss_and_gradients(params, X, T)
    assert np.isfinite(e) and all(np.all(np.isfinite(g)) for g in grads.values())


HOSTILE_TITLE = '"""\nimport os\nos.system("echo pwned")\n"""\\'


def toml_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def test_hostile_names_and_titles_cannot_inject_code(tmp_path):
    mazur_text = builtin_example_text("mazur").split("[published]")[0]  # the article's numbers name w1
    text = mazur_text.replace(
        'title = "A step-by-step backpropagation example"', f"title = {toml_string(HOSTILE_TITLE)}"
    )
    text = text.split("[published]")[0]  # its numbers are keyed by the names renamed here
    text = text.replace('["w1", "w2"], ["w3", "w4"]', '["sum", "print"], ["grads", "X"]').replace('"b1"', '"T"')
    model = Model(parse_spec(text))
    for source in (vector_module(model), scalar_module(model)):
        tree = ast.parse(source)
        assert not any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system" for n in ast.walk(tree))
        module = load(source)
        assert "os" not in vars(module)
    module = load(vector_module(model))
    assert module.TITLE == HOSTILE_TITLE
    grads = module.gradients(module.init_params(), np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]]))
    _, expected, _ = backprop(mazur())
    assert grads["W2"][0, 0] == pytest.approx(expected[0], rel=1e-12)
    scalar = load(scalar_module(model))
    values = dict(zip(scalar.ARGUMENTS, [0.05, 0.10, *mazur().flat(), 0.01, 0.99]))
    assert scalar.dE_dsum(**values) == pytest.approx(expected[0], rel=1e-12)


@pytest.mark.parametrize("bad", ["np", "class", "numpy"])
def test_names_that_would_break_a_module_are_rejected(tmp_path, bad):
    spec = tmp_path / "bad.toml"
    spec.write_text(builtin_example_text("mazur").split("[published]")[0].replace('"w1"', f'"{bad}"'))
    result = CliRunner().invoke(main, ["export", str(spec)])
    assert result.exit_code == 2
    assert bad in result.output and ("reserved" in result.output or "keyword" in result.output)


def test_export_cli(tmp_path):
    out = tmp_path / "mazur_grad.py"
    result = CliRunner().invoke(main, ["export", "mazur", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "def gradients(params, X, T):" in out.read_text()
    assert "# δ3 = ∂E/∂a3 ⊙ f'(z3)   (BP1)" in out.read_text()
    stdout = CliRunner().invoke(main, ["export", "mazur", "--style", "scalar"])
    assert "def dE_dw5(*, i1, i2," in stdout.output


def test_scalar_style_refuses_big_networks(tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text(
        "name = 'big'\n[loss]\nkind = 'sse'\n[[layers]]\nsize = 10\n[[layers]]\nsize = 10\nactivation = 'tanh'\n[[layers]]\nsize = 2\nactivation = 'linear'\n"
    )
    result = CliRunner().invoke(main, ["export", str(spec), "--style", "scalar"])
    assert result.exit_code == 2
    assert "120 parameters" in result.output and "--style vector" in result.output


def test_a_big_network_exports_compactly():
    text = "name = 'mnist'\n[loss]\nkind = 'cross_entropy'\n[[layers]]\nsize = 784\n[[layers]]\nsize = 256\nactivation = 'relu'\nbias = 'per_neuron'\n[[layers]]\nsize = 256\nactivation = 'relu'\nbias = 'per_neuron'\n[[layers]]\nsize = 10\nactivation = 'softmax'\nbias = 'per_neuron'\n"
    source = vector_module(Model(parse_spec(text)))
    assert len(source) < 50_000
    module = load(source)
    params = module.init_params()
    assert params["W2"].shape == (256, 784) and params["b4"].shape == (10,)
    assert len(module.PARAMETER_INDEX) == 784 * 256 + 256 + 256 * 256 + 256 + 2560 + 10
    X = np.random.default_rng(0).uniform(-1, 1, (3, 784))
    T = np.eye(10)[[1, 2, 3]]
    grads = module.gradients(params, X, T)
    # the softmax/cross-entropy δ folds to (a − t)/n: check one weight against it
    a = module.forward(params, X)
    z3 = np.maximum(np.maximum(X @ params["W2"].T, 0) @ params["W3"].T, 0)
    assert np.allclose(grads["W4"], ((a - T) / 3).T @ z3, rtol=1e-10, atol=1e-14)


def test_bench_runs_and_reports_json():
    require("threadpoolctl", "bench")  # the thread count and BLAS kernel are read through it
    result = CliRunner().invoke(
        main, ["bench", "--quick", "--budget", "0.05", "--no-torch-compile", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["gemm_gflops"] > 0
    first = data["shapes"][0]
    assert first["name"].startswith("mazur")
    assert {"generated", "hand-written", "closed form (scalar)", "GEMMs alone"} <= set(first["results"])
    assert first["results"]["hand-written"]["ratio_to_hand_written"] == 1.0
    # one thread unless asked, and the BLAS library says so itself (threadpoolctl)
    assert data["threads"] == 1
    assert any(pool["num_threads"] == 1 for pool in data["blas"])
    for shape in data["shapes"]:
        results = shape["results"]
        assert results["GEMMs alone"]["gemm_share"] == 1.0
        assert results["generated"]["gemm_share"] > 0
        assert results["generated"]["spread"] >= 0 and results["generated"]["rounds"] >= 9
    if require("jax", "bench"):
        assert first["results"]["jax.jit"]["ratio_to_jax"] == 1.0


def test_bench_pairs_jax_with_the_numpy_rounds_of_the_same_block_of_time():
    from derive.bench.measure import SHAPES, Result

    result = Result(SHAPES[0])
    # a quiet block and a block where the machine ran at half speed for everyone: 1.0 and 1.0, never 2.0
    for block, (numpy_time, jax_time) in enumerate([(1.0, 1.0), (2.0, 2.0), (1.0, 1.0)]):
        result.add({"generated": [numpy_time] * 5, "hand-written": [numpy_time * 1.1] * 5}, "numpy", block)
        result.add({"jax.jit": [jax_time] * 5}, "jax", block)
    result.add({"torch autograd": [3.0] * 5}, "torch autograd")
    assert result.ratio("generated", "jax.jit") == 1.0  # paired block by block
    # if the slow block had hit only one side, the medians' ratio would have been its verdict; paired, it counts once
    skewed = Result(SHAPES[0])
    for block, (numpy_time, jax_time) in enumerate([(1.0, 1.0), (2.0, 1.0), (1.0, 1.0)]):
        skewed.add({"generated": [numpy_time] * 5}, "numpy", block)
        skewed.add({"jax.jit": [jax_time] * 5}, "jax", block)
    assert skewed.ratio("generated", "jax.jit") == 1.0
    assert result.ratio("generated") == pytest.approx(1 / 1.1)  # same rounds: the rounds' ratios
    assert result.ratio("torch autograd", "jax.jit") == 3.0  # apart, one block: the ratio of the medians
    assert result.rounds["generated"] == result.rounds["hand-written"] != result.rounds["jax.jit"]


def test_bench_without_jax_says_so_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # as if JAX were not installed
    result = CliRunner().invoke(main, ["bench", "--quick", "--budget", "0.05", "--no-torch-compile"])
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stderr.splitlines() if "JAX" in line)
    assert warning.startswith("warning: JAX is not installed") and "[bench]" in warning
    assert "| jax.jit |" not in result.stdout and "Left out: JAX is not installed" in result.stdout
    assert "| generated |" in result.stdout and "1 thread" in result.stdout


def test_training_with_the_exported_module_matches_the_oracle():
    module = load(vector_module(Model.load("mazur")))
    params = module.init_params()
    X, T = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    for _ in range(2000):
        params = module.train_step(params, X, T)
    trained, history = train(mazur(), 2000)
    assert module.loss(params, X, T) == pytest.approx(history[-1], rel=1e-9)
    for k, (key, index) in enumerate(module.PARAMETER_INDEX.values()):
        assert params[key][index] == pytest.approx(trained.flat()[k], rel=1e-9)
