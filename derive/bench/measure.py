"""`derive bench`: the generated module against hand-written backprop, JAX, PyTorch, and the GEMMs alone.

Every figure is measured in the same run on the same inputs, with the same
number of threads (one by default, set before JAX is imported and through
threadpoolctl for BLAS): medians of repeated timings with their spread (the
interquartile range), ratios to the hand-written baseline and to JAX, and the
share of each implementation's time that the matrix products of one gradient
take on their own ("GEMMs alone": a·Wᵀ, δᵀ·a and δ·W of every layer, timed in
the same rounds). Every implementation computes the batch-mean loss and all
its gradients (the module's ``loss_and_gradients``).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    dtype: str = "float64"  # of the inputs and parameters: the module's arithmetic follows them

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
    Shape("784-30-10 sigmoid/softmax-CE", (784, 30, 10), "sigmoid", "softmax", "cross_entropy", 1),
    Shape("784-30-10 sigmoid/softmax-CE", (784, 30, 10), "sigmoid", "softmax", "cross_entropy", 64),
    Shape("784-30-10 sigmoid/softmax-CE", (784, 30, 10), "sigmoid", "softmax", "cross_entropy", 256),
    Shape("784-256-256-10 relu/softmax-CE", (784, 256, 256, 10), "relu", "softmax", "cross_entropy", 256),
    Shape("1024-1024-1024-10 relu/softmax-CE", (1024, 1024, 1024, 10), "relu", "softmax", "cross_entropy", 128),
    Shape("784-30-10 sigmoid/softmax-CE", (784, 30, 10), "sigmoid", "softmax", "cross_entropy", 64, dtype="float32"),
    Shape(
        "784-256-256-10 relu/softmax-CE", (784, 256, 256, 10), "relu", "softmax", "cross_entropy", 256, "", "float32"
    ),
)
QUICK = 3  # `--quick`: Mazur and 784-30-10 at batch 1 and 64

GENERATED = "generated"
HAND_WRITTEN = "hand-written"
JAX = "jax.jit"
GEMMS = "GEMMs alone"


@dataclass(frozen=True)
class Target:
    """A goal for the generated module on some shapes (issue 24): at most ``limit`` of a contender, or a share."""

    shapes: tuple[tuple[str, int, str], ...]  # (name prefix, batch, dtype)
    measure: str  # "vs hand-written", "vs JAX" or "GEMMs' share"
    limit: float

    def applies(self, name: str, batch: int, dtype: str) -> bool:
        return any(name.startswith(n) and batch == b and dtype == d for n, b, d in self.shapes)

    def met(self, value: float) -> bool:
        return value >= self.limit if self.measure == "GEMMs' share" else value <= self.limit


_NARROW = (("784-30-10", 64, "float64"), ("784-30-10", 256, "float64"))
_WIDE = (("784-256-256-10", 256, "float64"), ("1024-1024-1024-10", 128, "float64"))
TARGETS = (
    Target(_NARROW, "vs hand-written", 0.95),
    Target(_NARROW, "vs JAX", 1.0),
    Target(_NARROW, "GEMMs' share", 0.85),
    Target(_WIDE, "vs hand-written", 1.0),
    Target(_WIDE, "vs JAX", 1.0),
    Target(_WIDE, "GEMMs' share", 0.95),
    Target((("mazur", 1, "float64"),), "vs hand-written", 0.8),
    Target((("mazur", 1, "float64"),), "vs JAX", 1.0),
    Target((("784-30-10", 64, "float32"), ("784-256-256-10", 256, "float32")), "vs hand-written", 1.0),
    Target((("784-30-10", 1, "float64"),), "vs hand-written", 1.0),  # batch 1 keeps its lead
)
_KEYS = {"vs hand-written": "ratio_to_hand_written", "vs JAX": "ratio_to_jax", "GEMMs' share": "gemm_share"}


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target that applies to a measured shape, with the generated module's figure and whether it is met."""
    out = []
    for shape in data["shapes"]:
        for target in TARGETS:
            if not target.applies(shape["name"], shape["batch"], shape["dtype"]):
                continue
            value = shape["results"][GENERATED][_KEYS[target.measure]]
            best = shape["results"][GENERATED]["best_" + _KEYS[target.measure]]
            out.append(
                {
                    "shape": shape["name"],
                    "batch": shape["batch"],
                    "dtype": shape["dtype"],
                    "measure": target.measure,
                    "limit": target.limit,
                    "value": value,
                    "met": None if value is None else target.met(value),
                    "best": best,
                    "met_by_best": None if best is None else target.met(best),
                }
            )
    return out


@dataclass
class Result:
    shape: Shape
    samples: dict[str, list[float]] = field(default_factory=dict)  # implementation → seconds per call, per round
    rounds: dict[str, str] = field(default_factory=dict)  # implementation → the group timed in the same rounds
    blocks: dict[str, list[int]] = field(default_factory=dict)  # implementation → each sample's block of time
    first_call: dict[str, float] = field(default_factory=dict)  # seconds of a first call that compiles (jit)

    def add(self, samples: dict[str, list[float]], group: str, block: int = 0) -> None:
        """Samples of one group of implementations timed in the same rounds, in one block of time."""
        for impl, values in samples.items():
            self.samples.setdefault(impl, []).extend(values)
            self.blocks.setdefault(impl, []).extend([block] * len(values))
            self.rounds[impl] = group

    @property
    def times(self) -> dict[str, float]:
        """Median seconds per call of each implementation."""
        return {impl: statistics.median(values) for impl, values in self.samples.items()}

    def spread(self, impl: str) -> float:
        """The interquartile range of the samples as a fraction of their median."""
        values = self.samples[impl]
        if len(values) < 4:
            return 0.0
        q1, _, q3 = statistics.quantiles(values, n=4)
        return (q3 - q1) / statistics.median(values)

    def ratio(self, impl: str, to: str = HAND_WRITTEN) -> float | None:
        """impl's time over ``to``'s, as closely paired in time as they were measured.

        Timed in the same rounds: the median of the rounds' ratios (a round's two samples were taken
        back to back, so a busy moment of a shared machine slows both). Timed in alternating blocks
        (the NumPy rounds and JAX): the median over the blocks of the ratio of the two blocks' medians,
        so a slow minute counts once, not for one side only. Otherwise the ratio of the medians.
        """
        if to not in self.samples:
            return None
        if impl == to:
            return 1.0
        mine, theirs = self.samples[impl], self.samples[to]
        if self.rounds.get(impl) is not None and self.rounds.get(impl) == self.rounds.get(to):
            return statistics.median(a / b for a, b in zip(mine, theirs))
        common = sorted(set(self.blocks[impl]) & set(self.blocks[to]))
        if len(common) > 1:
            return statistics.median(
                statistics.median(v for v, b in zip(mine, self.blocks[impl]) if b == block)
                / statistics.median(v for v, b in zip(theirs, self.blocks[to]) if b == block)
                for block in common
            )
        return statistics.median(mine) / statistics.median(theirs)

    def best_ratio(self, impl: str, to: str = HAND_WRITTEN) -> float | None:
        """The ratio of the fastest samples: on a busy machine the least disturbed reading of each."""
        if to not in self.samples:
            return None
        return min(self.samples[impl]) / min(self.samples[to])

    def gemm_share(self, impl: str) -> float | None:
        """The GEMMs alone over this implementation's time: 1.0 is the limit of doing the same products."""
        share = self.ratio(GEMMS, impl) if GEMMS in self.samples else None
        return share

    def gflops(self, impl: str) -> float:
        return 2 * self.shape.macs() / self.times[impl] / 1e9


SAMPLE_SECONDS = 0.0005  # calls are grouped into samples of about this length
BLOCKS = 15  # the NumPy rounds and JAX alternate in this many blocks of time (5 left Mazur's median ratio at 0.97–1.47× over four runs, 15 at 0.95–1.06×)
SETTLE_SECONDS = 0.05  # a pause after JAX, whose runtime's threads would slow the next NumPy call (measured 1.3×)
MAX_ROUNDS = 1000


def sample_times(
    fns: dict[str, Callable[[], object]], budget: float = 1.0, min_rounds: int = 9
) -> dict[str, list[float]]:
    """Seconds per call of each function, one sample per round, in interleaved rounds.

    Each round runs every implementation once (each sample grouped to last
    ≳ 0.5 ms), so drifts in clock speed or cache state hit all of them alike. Short samples keep
    most of them clear of the moments another process takes the core (a shared machine).
    """
    numbers = {}
    once = {}
    for name, fn in fns.items():
        fn()
        start = time.perf_counter()
        fn()
        once[name] = max(time.perf_counter() - start, 1e-7)
        numbers[name] = max(1, int(SAMPLE_SECONDS / once[name]))
    per_round = sum(once[n] * numbers[n] for n in fns)
    rounds = min(MAX_ROUNDS, max(min_rounds, int(budget * len(fns) / per_round)))
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
    return samples


def median_times(fns: dict[str, Callable[[], object]], budget: float = 1.0, min_rounds: int = 9) -> dict[str, float]:
    """Median seconds per call of each function (see :func:`sample_times`)."""
    return {name: statistics.median(v) for name, v in sample_times(fns, budget, min_rounds).items()}


def gemm_gflops() -> float:
    a = np.random.default_rng(0).standard_normal((2048, 2048))
    b = np.random.default_rng(1).standard_normal((2048, 2048))
    t = median_times({"gemm": lambda: a @ b}, budget=2.0, min_rounds=5)["gemm"]
    return 2 * 2048**3 / t / 1e9


# -- threads ---------------------------------------------------------------------------------------


def prepare_jax(threads: int) -> str:
    """Set JAX to float64 and ``threads`` threads, which its flags allow only before its import; returns a note."""
    if "jax" in sys.modules:
        if sys.modules["jax"] is None:
            return ""
        import jax

        jax.config.update("jax_enable_x64", True)
        return "JAX was imported before the benchmark: its thread count is its own"
    os.environ["JAX_ENABLE_X64"] = "1"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()
    return ""


@contextmanager
def pinned_threads(threads: int) -> Iterator[dict[str, Any]]:
    """BLAS (threadpoolctl) and PyTorch limited to ``threads`` inside; yields what the BLAS libraries report."""
    info: dict[str, Any] = {"threads": threads, "blas": [], "cpus": None}
    saved_torch = None
    saved_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if threads == 1 and saved_cpus:
        # one core for the whole process: JAX's runtime and PyTorch's spinning threads cannot borrow another
        info["cpus"] = [max(saved_cpus)]
        os.sched_setaffinity(0, set(info["cpus"]))
    if _installed("torch"):
        import torch

        saved_torch = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        if _installed("threadpoolctl"):
            from threadpoolctl import threadpool_info, threadpool_limits

            with threadpool_limits(limits=threads):
                info["blas"] = [
                    {k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "prefix")}
                    for pool in threadpool_info()
                ]
                yield info
        else:
            info["blas"] = []
            yield info
    finally:
        if info["cpus"] and saved_cpus:
            os.sched_setaffinity(0, saved_cpus)
        if saved_torch is not None:
            import torch

            torch.set_num_threads(saved_torch)


# -- the contenders --------------------------------------------------------------------------------


def _torch_fns(
    shape: Shape, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray, compile_: bool
) -> dict[str, Callable[[], object]]:
    try:
        import torch
    except ImportError:
        return {}
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
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
            loss = fn(tp, tx, tt)
            loss.backward()
            return loss.item(), [value.grad for value in tp.values()]

        return run

    fns = {"torch autograd": step(loss_fn)}
    if compile_:
        fns["torch.compile"] = step(torch.compile(loss_fn))
    return fns


def _jax_fn(shape: Shape, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray) -> Callable[[], object] | None:
    """jax.jit(jax.value_and_grad(loss)) on device copies of the inputs, or None without JAX."""
    if not _installed("jax"):
        return None
    import jax
    import jax.numpy as jnp

    n_layers = len(shape.sizes) - 1

    def loss_fn(p: dict[str, Any], x: Any, t: Any) -> Any:
        a = x
        for i in range(n_layers):
            z = a @ p[f"W{i + 2}"].T + p[f"b{i + 2}"]
            act = shape.output if i == n_layers - 1 else shape.hidden
            if act == "sigmoid":
                a = jax.nn.sigmoid(z)
            elif act == "relu":
                a = jax.nn.relu(z)
            elif act == "softmax":
                return -jnp.sum(t * jax.nn.log_softmax(z, axis=1)) / x.shape[0]
        return 0.5 * jnp.sum((a - t) ** 2) / x.shape[0]

    step = jax.jit(jax.value_and_grad(loss_fn))
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    jx, jt = jnp.asarray(X), jnp.asarray(T)

    def run() -> object:
        return jax.block_until_ready(step(jp, jx, jt))

    return run


def _gemms_fn(shape: Shape, params: dict[str, np.ndarray], X: np.ndarray) -> Callable[[], object]:
    """The matrix products of one gradient and nothing else: a·Wᵀ, δᵀ·a and (but into the input) δ·W per layer."""
    rng = np.random.default_rng(3)
    dtype = X.dtype
    work = []
    prev = X
    for i, n in enumerate(shape.sizes[1:], start=2):
        W = params[f"W{i}"]
        delta = rng.standard_normal((shape.batch, n)).astype(dtype)
        work.append((prev, W, delta, i > 2))
        prev = rng.standard_normal((shape.batch, n)).astype(dtype)

    def run() -> object:
        for a, W, d, back in work:
            a @ W.T
            d.T @ a
            if back:
                d @ W
        return None

    return run


def run(
    shapes: tuple[Shape, ...] = SHAPES,
    budget: float = 1.0,
    torch_compile: bool = True,
    log: Callable[[str], None] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Measure every shape; returns plain data (see :func:`table`)."""
    say = log or (lambda _: None)
    with pinned_threads(threads) as info:
        notes = [note for note in [prepare_jax(threads)] if note]  # after pinning: JAX's threads inherit the core
        say(f"measuring float64 GEMM (2048×2048) on {threads} thread{'s' if threads > 1 else ''}…")
        peak = gemm_gflops()
        results = []
        for shape in shapes:
            say(f"{shape.name}, batch {shape.batch}, {shape.dtype}…")
            results.append(measure(shape, budget, torch_compile))
        # once more at the end: on a shared machine one reading can catch a busy moment
        peak = max(peak, gemm_gflops())
    data = _data(results, peak, info)
    data["left_out"] = left_out(torch_compile)
    data["notes"] = notes
    data["targets"] = targets(data) if threads == 1 else []  # the targets are set for one thread
    return data


TORCH_INSTALL = "pip install torch==2.13.0 (the CPU build; in a clone: .venv/bin/pip install -e '.[torch]')"


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (PyTorch takes seconds)."""
    import importlib.util

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
    if not _installed("jax"):
        notes.append(
            "JAX is not installed: the jax.jit rows and the ratios to JAX are left out; " + install_hint("bench")
        )
    if not _installed("threadpoolctl"):
        notes.append(
            "threadpoolctl is not installed: BLAS runs on its own number of threads, unreported; "
            + install_hint("bench")
        )
    if not _installed("array_api_compat"):
        notes.append("array-api-compat is not installed: the array API rows are left out; " + install_hint("array"))
    return notes


def _check(
    name: str, got: tuple[Any, dict[str, Any]], expected: tuple[float, dict[str, np.ndarray]], rtol: float
) -> None:
    """An implementation's loss and gradients against the hand-written ones (a shared bias: the sum of its δs)."""
    loss, grads = got
    np.testing.assert_allclose(float(loss), expected[0], rtol=rtol, err_msg=f"{name}: loss")
    for key, value in grads.items():
        value = np.asarray(value)
        want = expected[1][key].sum() if value.ndim == 0 else expected[1][key]
        np.testing.assert_allclose(value, want, rtol=rtol, atol=rtol * 1e-3, err_msg=f"{name}: {key}")


def measure(shape: Shape, budget: float, torch_compile: bool) -> Result:
    """Time every implementation on one shape, after checking they agree."""
    model = _Loaded(load_spec(shape.builtin) if shape.builtin else parse_spec(shape.spec_text(), "<bench>"))
    generated = compile_module(vector_module(model), "generated")
    dtype = np.dtype(shape.dtype)
    params = {k: np.asarray(v, dtype=dtype) for k, v in generated.init_params().items()}
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (shape.batch, shape.sizes[0])).astype(dtype)
    if shape.loss == "cross_entropy":
        T = np.eye(shape.sizes[-1], dtype=dtype)[rng.integers(0, shape.sizes[-1], shape.batch)]
    else:
        T = rng.uniform(0, 1, (shape.batch, shape.sizes[-1])).astype(dtype)
    rtol = 1e-9 if dtype == np.float64 else 2e-3
    # the baseline wants per-neuron bias vectors: broadcast shared biases (same numbers)
    base_params = {
        k: (np.full(params[f"W{k[1:]}"].shape[0], v, dtype=dtype) if k.startswith("b") and v.ndim == 0 else v)
        for k, v in params.items()
    }
    baseline = Backprop([shape.hidden] * (len(shape.sizes) - 2) + [shape.output], shape.loss)
    fns: dict[str, Callable[[], object]] = {
        GENERATED: lambda: generated.loss_and_gradients(params, X, T),
        HAND_WRITTEN: lambda: baseline.loss_and_gradients(base_params, X, T),
        GEMMS: _gemms_fn(shape, params, X),
    }
    expected = baseline.loss_and_gradients(base_params, X, T)
    ours = generated.loss_and_gradients(params, X, T)
    _check(GENERATED, ours, expected, rtol)
    for key, value in ours[1].items():
        if value.dtype != dtype or not value.flags.c_contiguous:
            raise AssertionError(f"the module's {key} is not a C-contiguous {dtype} array")
    jax_fn = _jax_fn(shape, params, X, T)
    jax_compile = 0.0
    if jax_fn is not None:
        fns[JAX] = jax_fn
        start = time.perf_counter()
        _check(JAX, jax_fn(), expected, rtol)  # type: ignore[arg-type]
        jax_compile = time.perf_counter() - start
    api = _array_api_module(model)
    if api is not None:
        fns["array API (NumPy)"] = lambda: api.loss_and_gradients(params, X, T)
        _check("array API (NumPy)", api.loss_and_gradients(params, X, T), expected, rtol)
    if len(model.spec.parameter_names) <= MAX_SCALAR_PARAMETERS and shape.batch == 1 and dtype == np.float64:
        scalar = compile_module(scalar_module(model), "scalar")
        values = _scalar_arguments(model, params, X, T)
        fns["closed form (scalar)"] = lambda: scalar.gradients(**values)
    result = Result(shape)
    torch_fns = _torch_fns(shape, base_params, X, T, torch_compile)
    if api is not None and torch_fns:
        torch_fns["array API (torch)"] = _array_api_on_torch(api, params, X, T)
    for name, fn in torch_fns.items():
        start = time.perf_counter()
        fn()  # warm up: torch.compile compiles here, outside the timings
        result.first_call[name] = time.perf_counter() - start
    if jax_fn is not None:
        result.first_call[JAX] = jax_compile
    # the NumPy implementations round by round; JAX and PyTorch each apart, after them: their runtimes'
    # threads keep spinning for a while after a call and would slow whatever ran next in a round
    # JAX in blocks of time (at least one round each, BLOCKS rounds in all) alternating with the NumPy rounds, paired block by block (see Result.ratio); a pause
    # after each JAX block lets its threads settle before NumPy runs again
    jax_run = fns.pop(JAX, None)
    for block in range(BLOCKS):
        result.add(sample_times(fns, budget / BLOCKS, min_rounds=1), "numpy", block)
        if jax_run is not None:
            result.add(sample_times({JAX: jax_run}, budget / BLOCKS, min_rounds=1), "jax", block)
            time.sleep(SETTLE_SECONDS)
    for name, fn in torch_fns.items():
        result.add(sample_times({name: fn}, budget), name)
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
    rtol = 1e-12 if X.dtype == np.float64 else 1e-4
    for key, value in api.gradients(tp, tX, tT).items():
        np.testing.assert_allclose(value.numpy(), expected[key], rtol=rtol, atol=rtol * 1e-3)
    return lambda: api.loss_and_gradients(tp, tX, tT)


def _data(results: list[Result], peak: float, threads: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_model() or platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            **_versions(),
        },
        "threads": threads["threads"],
        "cpus": threads["cpus"],
        "blas": threads["blas"],
        "gemm_gflops": peak,
        "shapes": [
            {
                "name": r.shape.name,
                "sizes": list(r.shape.sizes),
                "batch": r.shape.batch,
                "dtype": r.shape.dtype,
                "first_call_seconds": r.first_call,
                "results": {
                    impl: {
                        "median_seconds": t,
                        "spread": r.spread(impl),
                        "rounds": len(r.samples[impl]),
                        "timed_with": sorted(other for other, g in r.rounds.items() if g == r.rounds[impl]),
                        "ratio_to_hand_written": r.ratio(impl),
                        "ratio_to_jax": r.ratio(impl, JAX),
                        "gemm_share": r.gemm_share(impl),
                        "best_seconds": min(r.samples[impl]),
                        "best_ratio_to_hand_written": r.best_ratio(impl),
                        "best_ratio_to_jax": r.best_ratio(impl, JAX),
                        "best_gemm_share": r.best_ratio(GEMMS, impl) if GEMMS in r.samples else None,
                        "gflops": r.gflops(impl),
                    }
                    for impl, t in r.times.items()
                },
            }
            for r in results
        ],
    }


def _cpu_model() -> str:
    """The CPU's model name as Linux reports it (platform.processor() says only x86_64 there), or ""."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _versions() -> dict[str, str]:
    """Versions of the contenders that were imported by the run."""
    out = {}
    for module in ("jax", "torch"):
        if sys.modules.get(module) is not None:
            out[module] = str(sys.modules[module].__version__)
    return out


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


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}×"


def _share(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def blas_line(data: dict[str, Any]) -> str:
    """The thread count and the BLAS libraries' own report (threadpoolctl)."""
    pools = [
        f"{p['internal_api']} {p['version']} ({p['architecture']} kernel, {p['num_threads']} thread"
        f"{'s' if p['num_threads'] != 1 else ''})"
        for p in data.get("blas", [])
        if p.get("internal_api") in ("openblas", "mkl", "blis")
    ]
    pinned = f" (the process pinned to CPU {data['cpus'][0]})" if data.get("cpus") else ""
    return f"{data['threads']} thread{'s' if data['threads'] != 1 else ''}{pinned}; BLAS: " + (
        ", ".join(pools) or "not reported (threadpoolctl is not installed)"
    )


def table(data: dict[str, Any]) -> str:
    """A Markdown table of a run."""
    m = data["machine"]
    versions = "".join(f", {name} {m[name]}" for name in ("jax", "torch") if name in m)
    lines = [
        f"{m['processor']}, {m['cpus']} CPUs, Python {m['python']}, NumPy {m['numpy']}{versions}",
        f"{blas_line(data)}; float64 GEMM 2048×2048: {data['gemm_gflops']:.1f} GFLOP/s",
        "",
        "Each row times the batch-mean loss and every gradient (closed form: the gradients alone). Median seconds "
        "± their interquartile range. The NumPy rows run in interleaved rounds and their ratios are medians of the "
        "rounds' ratios (two samples taken back to back). JAX runs apart (its threads would slow the next NumPy "
        "call), in blocks of time alternating with the NumPy rounds: its ratios are medians over the blocks of the "
        "two blocks' medians' ratio. PyTorch runs apart, after them, and its ratios are ratios of medians. Best: the fastest sample, the least "
        "disturbed on a busy machine. GEMMs' share: the time the same matrix products take alone over the row's "
        "time (100 % is the limit).",
        "",
        "| shape | dtype | batch | implementation | median | ± | best | vs hand-written | vs JAX | GEMMs' share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape in data["shapes"]:
        for impl, r in shape["results"].items():
            lines.append(
                f"| {shape['name']} | {shape['dtype']} | {shape['batch']} | {impl} | {_time(r['median_seconds'])} | "
                f"{100 * r['spread']:.0f}% | {_time(r['best_seconds'])} | {_ratio(r['ratio_to_hand_written'])} | "
                f"{_ratio(r['ratio_to_jax'])} | {_share(r['gemm_share']) if impl != GEMMS else ''} |"
            )
    for impl in ("torch.compile", JAX):
        firsts = [shape["first_call_seconds"][impl] for shape in data["shapes"] if impl in shape["first_call_seconds"]]
        if firsts:
            lines += [
                "",
                f"{impl}'s first call on a shape (it compiles there when it must; not timed): "
                f"{min(firsts):.2f}–{max(firsts):.2f} s.",
            ]
    if data.get("targets"):
        lines += [
            "",
            "| target (generated) | dtype | batch | measure | goal | median | met | best | met by best |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for t in data["targets"]:
            share = t["measure"] == "GEMMs' share"
            goal = f"≥ {100 * t['limit']:.0f}%" if share else f"≤ {t['limit']:.2f}×"

            def shown(value: float | None, share: bool = share) -> str:
                return "" if value is None else f"{100 * value:.1f}%" if share else f"{value:.3f}×"

            met = {True: "yes", False: "no", None: "not measured"}
            lines.append(
                f"| {t['shape']} | {t['dtype']} | {t['batch']} | {t['measure']} | {goal} | {shown(t['value'])} | "
                f"{met[t['met']]} | {shown(t['best'])} | {met[t['met_by_best']]} |"
            )
    if data.get("notes"):
        lines += ["", *(f"Note: {note}" for note in data["notes"])]
    if data.get("left_out"):
        lines += ["", *(f"Left out: {note}" for note in data["left_out"])]
    return "\n".join(lines) + "\n"
