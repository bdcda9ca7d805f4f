"""Conv and pool nets in the exported modules, NumPy and array API, against PyTorch autograd.

The array-API module's conv and pool helpers use only the standard (strided slices, stack, concat, reshape,
matmul, argmax, where, sum, zeros): no item assignment, so immutable arrays (JAX) work as well as NumPy arrays,
torch tensors and Dask arrays. Every gradient is compared with torch autograd (tests/conv_oracle.py, which never
imports derive) within 1e-9 relative, for the nets of test_conv.py (conv1d, conv2d, stride, padding, max and
average pools, overlapping windows, a sample and batches), for random geometries, and for LeNet at batch 64.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import require, require_torch
from conv_oracle import compute, toml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv import NETS, close

from derive.app.api import Model
from derive.app.cli import main
from derive.bench import conv as conv_bench
from derive.codegen.modules import compile_module, vector_module
from derive.spec.reading import parse_spec


def module(net: dict, backend: str):
    if backend == "array-api":
        require("array_api_compat", "array")
    return compile_module(vector_module(Model(parse_spec(toml(net))), backend), backend.replace("-", "_"))


def data(net: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.array(net["X"], dtype=float), np.array(net["T"], dtype=float)


def assert_equals_torch(net: dict, loss: object, grads: dict, index: dict, want: dict | None = None) -> None:
    """E and every parameter's gradient (read through the module's PARAMETER_INDEX) equal torch's."""
    want = want or compute(require_torch(), net)
    assert close(float(loss), want["E"]), (float(loss), want["E"])
    assert set(index) == set(want["grads"])
    for name, (key, at) in index.items():
        assert close(float(grads[key][at]), want["grads"][name]), name


@pytest.mark.parametrize("name", list(NETS))
def test_the_array_api_module_on_numpy_arrays_equals_torch(name):
    net = NETS[name]
    api = module(net, "array-api")
    X, T = data(net)
    loss, grads = api.loss_and_gradients(api.init_params(), X, T)
    assert all(isinstance(g, (np.ndarray, np.generic)) for g in grads.values())  # a shared bias: a NumPy scalar
    assert_equals_torch(net, loss, grads, api.PARAMETER_INDEX)


@pytest.mark.parametrize("name", list(NETS))
def test_the_array_api_module_on_torch_tensors_equals_torch(name):
    torch = require_torch()
    net = NETS[name]
    api = module(net, "array-api")
    X, T = data(net)
    tX, tT = torch.tensor(X), torch.tensor(T)
    loss, grads = api.loss_and_gradients(api.init_params(like=tX), tX, tT)
    assert isinstance(loss, torch.Tensor) and all(isinstance(g, torch.Tensor) for g in grads.values())
    assert_equals_torch(net, loss, grads, api.PARAMETER_INDEX)
    forward = api.forward(api.init_params(like=tX), tX)
    assert isinstance(forward, torch.Tensor) and forward.shape == tuple(T.shape)


@pytest.mark.parametrize("name", ["conv2d-pad-maxpool-batch", "two-convs-overlapping-pool"])
def test_the_array_api_module_on_jax_arrays_equals_torch(name):
    """JAX arrays cannot be assigned to: the helpers build their scatters from stack, reshape and concat."""
    jax = require("jax", "bench")
    net = NETS[name]
    api = module(net, "array-api")
    X, T = data(net)
    with jax.enable_x64(True):
        jX, jT = jax.numpy.asarray(X), jax.numpy.asarray(T)
        loss, grads = api.loss_and_gradients(api.init_params(like=jX), jX, jT)
        assert all(isinstance(g, jax.Array) and g.dtype == jax.numpy.float64 for g in grads.values())
        assert_equals_torch(net, loss, {k: np.asarray(g) for k, g in grads.items()}, api.PARAMETER_INDEX)


@pytest.fixture(scope="module")
def cluster_client():
    require("dask", "dask")
    distributed = require("distributed", "dask")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.filterwarnings("ignore::dask.array.core.PerformanceWarning")
@pytest.mark.parametrize("name", ["conv2d-pad-maxpool-batch", "two-convs-overlapping-pool"])
def test_on_a_dask_cluster_a_conv_net_stays_lazy_and_equals_torch(cluster_client, name):
    import dask
    import dask.array as da

    net = NETS[name]
    api = module(net, "array-api")
    X, T = data(net)
    dX, dT = da.from_array(X, chunks=(1, *X.shape[1:])), da.from_array(T, chunks=(1, -1))
    params = api.init_params()  # NumPy parameters beside Dask maps
    loss, grads = api.loss_and_gradients(params, dX, dT)
    assert all(isinstance(v, da.Array) for v in [loss, *grads.values()])  # nothing computed yet
    loss, grads = dask.compute(loss, grads)  # a sample a chunk, on the workers
    assert len(cluster_client.scheduler_info()["workers"]) == 2
    assert_equals_torch(net, loss, grads, api.PARAMETER_INDEX)


# -- random geometries: every branch of the helpers (tiled and overlapping windows, stride, padding, 1-D, 2-D) --


@st.composite
def conv_nets(draw):
    """conv → pool → dense with a random geometry, a random batch and random numbers (a net for conv_oracle)."""
    d = draw(st.sampled_from([1, 2]))
    channels = draw(st.integers(1, 2))
    sides = [draw(st.integers(3, 8)) for _ in range(d)]
    kernel = [draw(st.integers(1, min(3, s))) for s in sides]
    stride = [draw(st.integers(1, 2)) for _ in range(d)]
    padding = [draw(st.integers(0, k // 2)) for k in kernel]  # torch: at most half the kernel
    conv_sides = [(s + 2 * p - k) // t + 1 for s, p, k, t in zip(sides, padding, kernel, stride)]
    pool_kernel = [draw(st.integers(1, min(3, s))) for s in conv_sides]
    pool_stride = [draw(st.integers(1, 3)) for _ in range(d)]
    pool_sides = [(s - k) // t + 1 for s, k, t in zip(conv_sides, pool_kernel, pool_stride)]
    out_channels = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def r(*shape: int) -> list:
        return np.round(rng.uniform(-0.5, 0.5, shape), 4).tolist()

    flat = out_channels * int(np.prod(pool_sides))
    kind = "2d" if d == 2 else "1d"
    bias = draw(st.sampled_from(["channel", "shared", "none"]))
    conv = {
        "kind": f"conv{kind}",
        "W": r(out_channels, channels, *kernel),
        "b": {"channel": r(out_channels), "shared": 0.1, "none": None}[bias],
        "stride": stride,
        "padding": padding,
        "activation": draw(st.sampled_from(["relu", "tanh", "sigmoid"])),
    }
    pool = {"kind": draw(st.sampled_from(["maxpool", "avgpool"])) + kind, "kernel": pool_kernel, "stride": pool_stride}
    return {
        "shape": [channels, *sides],
        "X": [r(channels, *sides) for _ in range(batch)],
        "T": [[0.25, 0.75]] * batch,
        "loss": "half_sse",
        "reduction": draw(st.sampled_from(["mean", "sum"])),
        "layers": [conv, pool, {"kind": "dense", "W": r(2, flat), "b": r(2), "activation": "sigmoid"}],
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_nets())
def test_random_conv_nets_equal_torch_in_both_backends(net):
    want = compute(require_torch(), net)
    X, T = data(net)
    for backend in ("numpy", "array-api"):
        exported = module(net, backend)
        loss, grads = exported.loss_and_gradients(exported.init_params(), X, T)
        assert_equals_torch(net, loss, grads, exported.PARAMETER_INDEX, want)


# -- LeNet at a real batch: the shapes the benchmark times ------------------------------------------------


def lenet_net(exported, batch: int, seed: int = 0) -> dict:
    """The built-in lenet's seeded parameters with random inputs and one-hot targets, as conv_oracle data."""
    p = exported.init_params()
    rng = np.random.default_rng([batch, seed])
    return {
        "shape": [1, 28, 28],
        "X": rng.uniform(-1, 1, (batch, 1, 28, 28)).tolist(),
        "T": np.eye(10)[rng.integers(0, 10, batch)].tolist(),
        "loss": "cross_entropy",
        "reduction": "mean",
        "layers": [
            {"kind": "conv2d", "W": p["W2"].tolist(), "b": p["b2"].tolist(), "activation": "relu"},
            {"kind": "maxpool2d", "kernel": 2},
            {"kind": "conv2d", "W": p["W4"].tolist(), "b": p["b4"].tolist(), "activation": "relu"},
            {"kind": "maxpool2d", "kernel": 2},
            {"kind": "dense", "W": p["W6"].tolist(), "b": p["b6"].tolist(), "activation": "softmax"},
        ],
    }


@pytest.mark.parametrize("batch", [1, 64])
def test_lenet_equals_torch_in_both_backends(batch):
    torch = require_torch()
    model = Model.load("lenet")
    numpy_module = compile_module(vector_module(model), "lenet")
    net = lenet_net(numpy_module, batch)
    want = compute(torch, net)
    X, T = data(net)
    loss, grads = numpy_module.loss_and_gradients(numpy_module.init_params(), X, T)
    assert_equals_torch(net, loss, grads, numpy_module.PARAMETER_INDEX, want)
    require("array_api_compat", "array")
    api = compile_module(vector_module(model, "array-api"), "lenet_api")
    tX, tT = torch.tensor(X), torch.tensor(T)
    loss, grads = api.loss_and_gradients(api.init_params(like=tX), tX, tT)
    assert_equals_torch(net, loss, grads, api.PARAMETER_INDEX, want)


# -- the array-API module is written in the standard ----------------------------------------------------------


def test_the_exported_array_api_conv_module_assigns_no_items_calls_no_numpy_and_passes_ruff(tmp_path):
    require("array_api_compat", "array")
    out = tmp_path / "lenet_api.py"
    result = CliRunner().invoke(main, ["export", "lenet", "--backend", "array-api", "-o", str(out)])
    assert result.exit_code == 0, result.output
    tree = ast.parse(out.read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    # the seeded initialisers (_xavier, _he), init_params and fit's shuffling draw with NumPy; nothing else does
    helpers = [f for f in functions if f.name.startswith("_") and f.name not in ("_xavier", "_he")]
    assert {"_conv", "_conv_back", "_kernel_gradient", "_maxpool", "_maxpool_back"} <= {f.name for f in helpers}
    derived = [f for f in functions if f.name in ("forward", "loss", "loss_and_gradients", "gradients", "update")]
    for function in [*helpers, *derived]:
        for node in ast.walk(function):
            assert not (isinstance(node, ast.Name) and node.id == "np"), (function.name, ast.unparse(node))
    for function in helpers:  # arrays are never written into (the public functions fill dicts of them)
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            assert not any(isinstance(t, ast.Subscript) for t in targets), (function.name, ast.unparse(node))
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "E9,F", str(out)],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout


def test_the_columns_kept_between_calls_belong_to_one_thread_and_one_shape():
    """The NumPy module keeps each conv layer's im2col columns from one call to the next: threads computing at
    once on batches of one size (one shared buffer would mix them: 10 of 60 results were wrong when tried), and
    batches of different sizes one after another, each get torch's gradients; a result already returned is not
    touched by a later call."""
    torch = require_torch()
    exported = compile_module(vector_module(Model.load("lenet")), "lenet")
    nets = {seed: lenet_net(exported, 3, seed) for seed in range(3)}
    wants = {seed: compute(torch, net) for seed, net in nets.items()}
    params = exported.init_params()
    results: dict[int, list] = {seed: [] for seed in nets}

    def work(seed: int) -> None:
        X, T = data(nets[seed])
        for _ in range(10):
            results[seed].append(exported.loss_and_gradients(params, X, T))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in nets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, net in nets.items():
        for result in results[seed]:
            assert_equals_torch(net, *result, exported.PARAMETER_INDEX, wants[seed])
    small = lenet_net(exported, 2)
    first = exported.loss_and_gradients(params, *data(small))
    exported.loss_and_gradients(params, *data(nets[0]))
    assert_equals_torch(small, *first, exported.PARAMETER_INDEX)


def test_bench_reports_the_lenet_rows_and_the_command():
    """`derive bench` times the LeNet against PyTorch eager at batch 1 and 64 and the grad command against
    `import sympy` (the figures are the README's; here only that every row is measured and reported)."""
    require_torch()
    require("array_api_compat", "array")
    result = CliRunner().invoke(
        main, ["bench", "--quick", "--budget", "0.05", "--no-torch-compile", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["conv"]
    assert [entry["batch"] for entry in data["batches"]] == [1, 64]
    for entry in data["batches"]:
        rows = entry["results"]
        assert set(rows) == {"generated (NumPy)", "torch eager", "array API (NumPy)", "array API (torch)"}
        assert all(row["cpu_seconds"] > 0 and row["ratio_to_torch"] > 0 for row in rows.values())
        assert rows["torch eager"]["ratio_to_torch"] == 1.0
    command = data["command"]
    assert command["command"] == "derive grad lenet w2_1_1_1_1"
    assert command["grad"]["wall_seconds"] > command["import_sympy"]["wall_seconds"] > 0
    assert data["machine"]["threads"] == 1 and data["machine"]["torch"]
    text = conv_bench.table(data)
    assert "| 64 | generated (NumPy) |" in text and "≤ 1.5×" in text and "`derive grad lenet w2_1_1_1_1`" in text


def test_a_lenet_kernel_weights_closed_form_is_refused_past_the_limit():
    """A map layer's δs are sized row by row, counted only up to the limit: the note says the closed form is
    over it (a LeNet kernel weight's would have about 2·10¹² nodes) instead of counting every node."""
    result = CliRunner().invoke(main, ["grad", "lenet", "w2_1_1_1_1", "--format", "json"])
    assert result.exit_code == 0, result.output
    note = json.loads(result.stdout)["expression_note"]
    assert "would have more than 60,000 nodes (the limit)" in note
