"""The array-API module: the same derived code on NumPy, PyTorch and a Dask cluster.

Each library's results are compared with the NumPy module's (itself checked
against the oracles in test_export.py) to 1e-12, and the rewriting of NumPy
lines into array-API lines is checked on its own.
"""

import ast
import subprocess
import sys
import types

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require, require_torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from strategies import networks

from derive.app.api import Model
from derive.app.cli import main
from derive.codegen.arrayapi import array_api_lines
from derive.codegen.modules import vector_module
from derive.errors import DeriveError
from derive.spec.reading import parse_spec


def without_erf(net):
    """The standard has no erf: gelu networks export for NumPy only (see the test below)."""
    return "gelu" not in net.activations


def test_gelu_is_refused_for_the_array_api_with_a_reason():
    spec = parse_spec(
        'loss = "mse"\n[[layers]]\nsize = 2\nvalues = [0.1, 0.2]\n[[layers]]\nsize = 2\nactivation = "gelu"\n'
    )
    with pytest.raises(DeriveError, match="erf has no counterpart in the array API standard"):
        vector_module(Model(spec), "array-api")


SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(source, name="generated"):
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def modules(model):
    require("array_api_compat", "array")
    return load(vector_module(model)), load(vector_module(model, "array-api"), "array_api")


def data(module, rows, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (rows, module.SIZES[0]))
    T = rng.dirichlet(np.ones(module.SIZES[-1]), rows)  # rows of probabilities: valid for every loss
    return X, T


def assert_close(ours, expected):
    for key in expected:
        np.testing.assert_allclose(np.asarray(ours[key]), expected[key], rtol=1e-12, atol=1e-15)


@SETTINGS
@given(networks(), st.integers(1, 5), st.integers(0, 1000))
def test_on_numpy_arrays_it_computes_what_the_numpy_module_does(net, rows, seed):
    assume(without_erf(net))
    numpy_module, api = modules(Model(parse_spec(net.toml())))
    X, T = data(numpy_module, rows, seed)
    params = numpy_module.init_params()
    assert_close(api.gradients(params, X, T), numpy_module.gradients(params, X, T))
    e, grads = api.loss_and_gradients(params, X, T)
    assert e == pytest.approx(numpy_module.loss(params, X, T), rel=1e-12, abs=1e-15)
    assert_close(grads, numpy_module.gradients(params, X, T))
    np.testing.assert_allclose(api.forward(params, X), numpy_module.forward(params, X), rtol=1e-12, atol=1e-15)
    assert_close(api.train_step(params, X, T), numpy_module.train_step(params, X, T))


@SETTINGS
@given(networks(max_hidden=2), st.integers(1, 5), st.integers(0, 1000))
def test_torch_tensors_in_torch_tensors_out(net, rows, seed):
    assume(without_erf(net))
    torch = require_torch()
    numpy_module, api = modules(Model(parse_spec(net.toml())))
    X, T = data(numpy_module, rows, seed)
    tX, tT = torch.tensor(X), torch.tensor(T)
    params = api.init_params(like=tX)
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float64 for v in params.values())
    grads = api.gradients(params, tX, tT)
    assert all(isinstance(g, torch.Tensor) for g in grads.values())
    expected = numpy_module.gradients(numpy_module.init_params(), X, T)
    assert_close({k: g.numpy() for k, g in grads.items()}, expected)
    e = api.loss(params, tX, tT)
    assert isinstance(e, torch.Tensor)
    assert float(e) == pytest.approx(numpy_module.loss(numpy_module.init_params(), X, T), rel=1e-12, abs=1e-15)
    out = api.forward(params, tX)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), numpy_module.forward(numpy_module.init_params(), X), rtol=1e-12)


def test_torch_fit_predict_and_accuracy_follow_numpy():
    torch = require_torch()
    numpy_module, api = modules(Model.load("softmax"))
    X, T = data(numpy_module, 50, 0)
    tX, tT = torch.tensor(X), torch.tensor(T)
    trained = api.fit(api.init_params(like=tX), tX, tT, epochs=3, batch_size=8)
    expected = numpy_module.fit(numpy_module.init_params(), X, T, epochs=3, batch_size=8)
    assert_close({k: v.numpy() for k, v in trained.items()}, expected)
    assert isinstance(api.predict(trained, tX), torch.Tensor)
    assert np.array_equal(api.predict(trained, tX).numpy(), numpy_module.predict(expected, X))
    assert api.accuracy(trained, tX, tT) == numpy_module.accuracy(expected, X, T)


@pytest.fixture(scope="module")
def cluster_client():
    require("dask", "dask")
    distributed = require("distributed", "dask")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_on_a_dask_cluster_everything_stays_lazy_and_computes_once(cluster_client):
    import dask
    import dask.array as da

    numpy_module, api = modules(Model.load("digits"))
    X, T = data(numpy_module, 2000, 1)
    dX, dT = da.from_array(X, chunks=(500, -1)), da.from_array(T, chunks=(500, -1))
    params = numpy_module.init_params()
    e, grads = api.loss_and_gradients(params, dX, dT)
    stepped = api.train_step(params, dX, dT)
    lazy = [e, *grads.values(), *stepped.values()]
    assert all(isinstance(v, da.Array) for v in lazy)  # nothing computed yet
    e, grads, stepped = dask.compute(e, grads, stepped)  # one graph, reduced over the row chunks on the workers
    assert len(cluster_client.scheduler_info()["workers"]) == 2
    assert float(e) == pytest.approx(numpy_module.loss(params, X, T), rel=1e-12)
    assert_close(grads, numpy_module.gradients(params, X, T))
    assert_close(stepped, numpy_module.train_step(params, X, T))
    loss = api.loss(params, dX, dT)
    assert isinstance(loss, da.Array)
    assert float(loss.compute()) == pytest.approx(numpy_module.loss(params, X, T), rel=1e-12)


# -- the rewriting of NumPy lines ---------------------------------------------------------


@pytest.mark.parametrize(
    ("numpy_line", "array_api_line"),
    [
        ("z2 = X.dot(W2.T)", "z2 = X @ W2.T"),
        ('    grads["W3"] = d3.T.dot(a2)', '    grads["W3"] = d3.T @ a2'),
        ("a2 = np.tanh(z2, out=z2)", "a2 = xp.tanh(z2)"),
        ("y = np.arctan(z) + np.e", "y = xp.atan(z) + xp.e"),
        ("e3 = np.exp(z3 - z3.max(axis=1, keepdims=True))", "e3 = xp.exp(z3 - xp.max(z3, axis=1, keepdims=True))"),
        ("return np.sum(-log_a3*T, axis=1).mean()", "return xp.mean(xp.sum(-log_a3*T, axis=1))"),
        ("s = 2*a.dot(b)", "s = 2*(a @ b)"),
        ("s = (a + b).dot(c - d)", "s = (a + b) @ (c - d)"),
        ("z6 = a5.reshape(a5.shape[0], -1).dot(W6.T)", "z6 = xp.reshape(a5, (a5.shape[0], -1)) @ W6.T"),
        ("d5 = d6.dot(W6).reshape(a5.shape)", "d5 = xp.reshape(d6 @ W6, a5.shape)"),
        ("if not single:  # E is the batch mean", "if not single:  # E is the batch mean"),
        ("# a2 = np.tanh(z2)", "# a2 = np.tanh(z2)"),
    ],
)
def test_numpy_lines_become_array_api_lines(numpy_line, array_api_line):
    rewritten = array_api_lines([numpy_line])
    if "xp." in array_api_line and not array_api_line.lstrip().startswith("#"):
        assert rewritten == ["xp = array_namespace(X)", array_api_line]
    else:
        assert rewritten == [array_api_line]


@pytest.mark.parametrize("line", ["y = np.heaviside(z, 0.5)", "y = z.clip(0, 1)", "y = np.fft.fft(z)"])
def test_what_the_standard_lacks_is_refused_not_passed_through(line):
    with pytest.raises(DeriveError, match="array API"):
        array_api_lines([line])


def test_an_activation_the_standard_cannot_write_is_refused_at_export(tmp_path):
    spec = tmp_path / "gelu.toml"
    spec.write_text("[loss]\nkind = 'mse'\n[[layers]]\nsize = 2\n[[layers]]\nsize = 2\nactivation = 'gelu'\n")
    result = CliRunner().invoke(main, ["export", str(spec), "--backend", "array-api", "-o", str(tmp_path / "m.py")])
    assert result.exit_code == 2 and "array API" in result.output and "--backend numpy" in result.output
    assert not (tmp_path / "m.py").exists()


def test_export_cli_writes_an_array_api_module_that_passes_ruff(tmp_path):
    require("array_api_compat", "array")
    out = tmp_path / "softmax_api.py"
    result = CliRunner().invoke(main, ["export", "softmax", "--backend", "array-api", "-o", str(out)])
    assert result.exit_code == 0, result.output
    source = out.read_text()
    imports = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert sorted(a.name for n in imports for a in n.names) == ["array_namespace", "device", "numpy"]
    assert "np.exp" not in source and "xp.exp" in source and ".dot(" not in source
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(out)], capture_output=True, text=True
    )
    assert ruff.returncode == 0, ruff.stdout
    refused = CliRunner().invoke(main, ["export", "softmax", "--backend", "array-api", "--style", "scalar"])
    assert refused.exit_code == 2 and "NumPy only" in refused.stderr


def test_bench_times_the_array_api_module_on_numpy_and_torch():
    require("array_api_compat", "array")
    require_torch()
    import json

    result = CliRunner().invoke(
        main, ["bench", "--quick", "--budget", "0.05", "--no-torch-compile", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for shape in data["shapes"]:
        assert {"array API (NumPy)", "array API (torch)"} <= set(shape["results"])
        assert shape["results"]["array API (NumPy)"]["median_seconds"] > 0


def test_the_array_api_module_needs_only_numpy_and_array_api_compat(tmp_path):
    require("array_api_compat", "array")
    (tmp_path / "digits_api.py").write_text(vector_module(Model.load("digits"), "array-api"))
    code = "import sys\n"
    code += "for blocked in ('sympy', 'derive', 'jinja2', 'click', 'torch', 'dask'): sys.modules[blocked] = None\n"
    code += f"sys.path.insert(0, {str(tmp_path)!r})\n"
    code += "import numpy, digits_api as m\n"
    code += "X, T = numpy.zeros((3, 64)), numpy.eye(10)[:3]\n"
    code += (
        "print(type(m.gradients(m.init_params(), X, T)['W2']).__name__, m.accuracy(m.init_params(like=X), X, T) >= 0)\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ndarray", "True"]
