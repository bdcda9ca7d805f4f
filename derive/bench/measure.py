"""`derive bench`: the generated module against hand-written backprop, PyTorch, and more.

Every figure is measured in the same run on the same inputs: medians of
repeated timings, ratios to the hand-written baseline, achieved GFLOP/s (2 flops
per multiply-add of the forward and backward matrix products) and, for scale,
the float64 GEMM throughput of a 2048×2048 matmul measured in the same run.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..codegen.modules import ARRAY_API, MAX_SCALAR_PARAMETERS, compile_module, scalar_module, vector_module
from ..core.network import Network
from ..spec.reading import Spec, load_spec, parse_spec
from .baseline import Backprop


class _Loaded:
    """A spec and its network: what the module writers need (derive.codegen.modules.Specified)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.network = Network(spec)


@dataclass(frozen=True)
class Shape:
    name: str
    sizes: tuple[int, ...]
    hidden: str  # activation of the hidden layers
    output: str
    loss: str
    batch: int
    builtin: str = ""  # a built-in example instead of a generated spec

    def spec_text(self) -> str:
        layers = [f"[[layers]]\nsize = {self.sizes[0]}"]
        for i, n in enumerate(self.sizes[1:], start=1):
            act = self.output if i == len(self.sizes) - 1 else self.hidden
            layers.append(f"[[layers]]\nsize = {n}\nactivation = '{act}'\nbias = 'per_neuron'")
        return f"name = 'bench'\n[loss]\nkind = '{self.loss}'\n[init]\nseed = 1\n" + "\n".join(layers) + "\n"

    def macs(self) -> int:
        """Multiply-adds of the matrix products: forward, ∂E/∂W, and δ back through W (not into the input)."""
        pairs = [a * b for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        return self.batch * (2 * sum(pairs) + sum(pairs[1:]))


SHAPES = (
    Shape("mazur 2-2-2", (2, 2, 2), "sigmoid", "sigmoid", "half_sse", 1, builtin="mazur"),
    Shape("784-30-10 sigmoid", (784, 30, 10), "sigmoid", "sigmoid", "half_sse", 1),
    Shape("784-30-10 sigmoid", (784, 30, 10), "sigmoid", "sigmoid", "half_sse", 64),
    Shape("784-256-256-10 relu/softmax-CE", (784, 256, 256, 10), "relu", "softmax", "cross_entropy", 256),
    Shape("1024-1024-1024-10 relu/softmax-CE", (1024, 1024, 1024, 10), "relu", "softmax", "cross_entropy", 512),
)


@dataclass
class Result:
    shape: Shape
    times: dict[str, float] = field(default_factory=dict)  # implementation → median seconds
    notes: dict[str, str] = field(default_factory=dict)

    def ratio(self, impl: str) -> float:
        return self.times[impl] / self.times["hand-written"]

    def gflops(self, impl: str) -> float:
        return 2 * self.shape.macs() / self.times[impl] / 1e9


def median_times(fns: dict[str, Callable[[], object]], budget: float = 1.0, min_rounds: int = 9) -> dict[str, float]:
    """Median seconds per call of each function, sampled in interleaved rounds.

    Each round runs every implementation once (each sample grouped to last
    ≳ 2 ms), so drifts in clock speed or cache state hit all of them alike.
    """
    numbers = {}
    once = {}
    for name, fn in fns.items():
        fn()
        start = time.perf_counter()
        fn()
        once[name] = max(time.perf_counter() - start, 1e-7)
        numbers[name] = max(1, int(0.002 / once[name]))
    per_round = sum(once[n] * numbers[n] for n in fns)
    rounds = min(200, max(min_rounds, int(budget * len(fns) / per_round)))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                number = numbers[name]
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                samples[name].append((time.perf_counter() - t0) / number)
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def gemm_gflops() -> float:
    a = np.random.default_rng(0).standard_normal((2048, 2048))
    b = np.random.default_rng(1).standard_normal((2048, 2048))
    t = median_times({"gemm": lambda: a @ b}, budget=2.0, min_rounds=5)["gemm"]
    return 2 * 2048**3 / t / 1e9


def _torch_fns(
    shape: Shape, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray, compile_: bool
) -> dict[str, Callable[[], object]]:
    try:
        import torch
    except ImportError:
        return {}
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    tx, tt = torch.tensor(X), torch.tensor(T)
    n_layers = len(shape.sizes) - 1

    def loss_fn(tp: dict[str, Any], tx: Any, tt: Any) -> Any:
        a = tx
        for i in range(n_layers):
            z = a @ tp[f"W{i + 2}"].T + tp[f"b{i + 2}"]
            last = i == n_layers - 1
            act = shape.output if last else shape.hidden
            if act == "sigmoid":
                a = torch.sigmoid(z)
            elif act == "relu":
                a = torch.relu(z)
            elif act == "softmax":
                return -(tt * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
        return (0.5 * (a - tt) ** 2).sum(dim=1).mean()

    def step(fn: Callable[..., Any]) -> Callable[[], object]:
        def run() -> object:
            for value in tp.values():
                value.grad = None
            fn(tp, tx, tt).backward()
            return [value.grad for value in tp.values()]

        return run

    fns = {"torch autograd": step(loss_fn)}
    if compile_:
        fns["torch.compile"] = step(torch.compile(loss_fn))
    return fns


def run(
    shapes: tuple[Shape, ...] = SHAPES,
    budget: float = 1.0,
    torch_compile: bool = True,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every shape; returns plain data (see :func:`table`)."""
    say = log or (lambda _: None)
    say("measuring float64 GEMM (2048×2048)…")
    peak = gemm_gflops()
    results = []
    for shape in shapes:
        say(f"{shape.name}, batch {shape.batch}…")
        results.append(measure(shape, budget, torch_compile))
    # once more at the end: on a shared machine one reading can catch a busy moment (and show "105 % of GEMM")
    peak = max(peak, gemm_gflops())
    data = _data(results, peak)
    data["left_out"] = left_out(torch_compile)
    return data


TORCH_INSTALL = "pip install torch==2.13.0 (the CPU build; in a clone: .venv/bin/pip install -e '.[torch]')"


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (PyTorch takes seconds)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return sys.modules[module] is not None  # None: an import that is known to fail
    return importlib.util.find_spec(module) is not None


def left_out(torch_compile: bool = True) -> list[str]:
    """The rows a run cannot have on this machine, each with what is missing and how to install it."""
    from ..install import install_hint

    notes = []
    if not _installed("torch"):
        rows = "torch autograd" + (", torch.compile" if torch_compile else "") + " and array API (torch)"
        notes.append(f"PyTorch is not installed: the {rows} rows are left out; {TORCH_INSTALL}")
    if not _installed("array_api_compat"):
        notes.append("array-api-compat is not installed: the array API rows are left out; " + install_hint("array"))
    return notes


def measure(shape: Shape, budget: float, torch_compile: bool) -> Result:
    """Time every implementation on one shape, after checking they agree."""
    model = _Loaded(load_spec(shape.builtin) if shape.builtin else parse_spec(shape.spec_text(), "<bench>"))
    generated = compile_module(vector_module(model), "generated")
    params = generated.init_params()
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (shape.batch, shape.sizes[0]))
    if shape.loss == "cross_entropy":
        T = np.eye(shape.sizes[-1])[rng.integers(0, shape.sizes[-1], shape.batch)]
    else:
        T = rng.uniform(0, 1, (shape.batch, shape.sizes[-1]))
    # the baseline wants per-neuron bias vectors: broadcast shared biases (same numbers)
    base_params = {
        k: (np.full(params[f"W{k[1:]}"].shape[0], float(v)) if k.startswith("b") and v.ndim == 0 else v)
        for k, v in params.items()
    }
    baseline = Backprop([shape.hidden] * (len(shape.sizes) - 2) + [shape.output], shape.loss)
    fns: dict[str, Callable[[], object]] = {
        "generated": lambda: generated.gradients(params, X, T),
        "hand-written": lambda: baseline.gradients(base_params, X, T),
    }
    check = baseline.gradients(base_params, X, T)
    ours = generated.gradients(params, X, T)
    for key, value in ours.items():
        expected = check[key].sum() if value.ndim == 0 else check[key]
        np.testing.assert_allclose(value, expected, rtol=1e-9, atol=1e-12)
    api = _array_api_module(model)
    if api is not None:
        fns["array API (NumPy)"] = lambda: api.gradients(params, X, T)
        for key, value in api.gradients(params, X, T).items():
            np.testing.assert_allclose(value, ours[key], rtol=1e-12, atol=1e-15)
    if len(model.spec.parameter_names) <= MAX_SCALAR_PARAMETERS and shape.batch == 1:
        scalar = compile_module(scalar_module(model), "scalar")
        values = _scalar_arguments(model, params, X, T)
        fns["closed form (scalar)"] = lambda: scalar.gradients(**values)
    result = Result(shape)
    # the NumPy implementations are interleaved round by round; PyTorch runs apart, after
    # them, because its OpenMP threads keep spinning after each call and would slow BLAS
    result.times.update(median_times(fns, budget))
    torch_fns = _torch_fns(shape, base_params, X, T, torch_compile)
    if api is not None and torch_fns:
        torch_fns["array API (torch)"] = _array_api_on_torch(api, params, X, T)
    for name, fn in torch_fns.items():
        fn()  # warm up: torch.compile compiles here, outside the timings
        result.times.update(median_times({name: fn}, budget))
    return result


def _array_api_module(model: _Loaded) -> types.ModuleType | None:
    """The array-API module of the spec, or None without array-api-compat (the array extra)."""
    try:
        import array_api_compat  # noqa: F401
    except ImportError:
        return None
    return compile_module(vector_module(model, ARRAY_API), "array_api")


def _array_api_on_torch(
    api: types.ModuleType, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray
) -> Callable[[], object]:
    import torch

    tX, tT = torch.tensor(X), torch.tensor(T)
    tp = {k: torch.tensor(v) for k, v in params.items()}
    expected = api.gradients(params, X, T)
    for key, value in api.gradients(tp, tX, tT).items():
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=1e-12, atol=1e-15)
    return lambda: api.gradients(tp, tX, tT)


def _data(results: list[Result], peak: float) -> dict[str, Any]:
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "gemm_gflops": peak,
        "shapes": [
            {
                "name": r.shape.name,
                "sizes": list(r.shape.sizes),
                "batch": r.shape.batch,
                "results": {
                    impl: {
                        "median_seconds": t,
                        "ratio_to_hand_written": r.ratio(impl),
                        "gflops": r.gflops(impl),
                        "fraction_of_gemm": r.gflops(impl) / peak,
                    }
                    for impl, t in r.times.items()
                },
            }
            for r in results
        ],
    }


def _scalar_arguments(model: _Loaded, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray) -> dict[str, float]:
    net = model.network
    values: dict[str, float] = {}
    for j, s in enumerate(net.input_layer.outs):
        values[s.name] = float(X[0, j])
    for j, n in enumerate(net.output_layer.neurons):
        assert n.target is not None
        values[n.target.name] = float(T[0, j])
    for name in model.spec.parameter_names:
        info = net.info[name]
        layer = net.layers[info.layer]
        if info.kind == "weight":
            values[name] = float(params[f"W{layer.number}"][info.row, info.col])
        else:
            b = params[f"b{layer.number}"]
            values[name] = float(b if b.ndim == 0 else b[info.row])
    return values


def _time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def table(data: dict[str, Any]) -> str:
    """A Markdown table of a run."""
    m = data["machine"]
    lines = [
        f"{m['processor']}, {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']}; "
        f"float64 GEMM 2048×2048: {data['gemm_gflops']:.1f} GFLOP/s",
        "",
        "| shape | batch | implementation | median | vs hand-written | GFLOP/s | of GEMM |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in data["shapes"]:
        for impl, r in shape["results"].items():
            lines.append(
                f"| {shape['name']} | {shape['batch']} | {impl} | {_time(r['median_seconds'])} | "
                f"{r['ratio_to_hand_written']:.2f}× | {r['gflops']:.2f} | {100 * r['fraction_of_gemm']:.0f}% |"
            )
    if data.get("left_out"):
        lines += ["", *(f"Left out: {note}" for note in data["left_out"])]
    return "\n".join(lines) + "\n"
