"""`derive bench`'s convolutional rows: the built-in LeNet's generated gradients against PyTorch eager.

Measured side by side in one process on one thread (BLAS pinned with threadpoolctl, ``torch.set_num_threads(1)``),
float64, on the same inputs: the exported NumPy module's ``gradients``, the array-API module on NumPy arrays and on
torch tensors, and PyTorch's forward and backward of the same net, in interleaved rounds of samples of about a
millisecond. Each sample records the wall time and the thread's CPU time (user and system, page faults included):
on a shared machine the wall time also counts the other jobs' turns on the cores, the CPU time only this thread's
work. The ratio to PyTorch eager is the median of each round's CPU ratio (the targets are checked on it), with the
ratio of the best wall-time samples beside it. Every implementation's gradients are checked against PyTorch's
(1e-9) before the timing.

Also the wall time of the whole command ``derive grad lenet <a kernel weight>`` against ``python -c "import sympy"``,
fresh processes run alternately, with the CPU time of each beside it.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..codegen.modules import ARRAY_API, compile_module, vector_module
from ..core.network import Network
from ..spec.reading import Spec, load_spec

NET = "lenet"
WEIGHT = "w2_1_1_1_1"  # a kernel weight of the first conv: 576 uses
BATCHES = (1, 64)
TORCH = "torch eager"
# the targets: time over PyTorch eager's at each batch, and the command over `import sympy`
TARGETS = {1: 1.0, 64: 1.5}
COMMAND_TARGET = 6.0


class _Loaded:
    """A spec and its network: what the module writers read (derive.codegen.modules.Specified)."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.network = Network(spec)


@contextmanager
def one_thread() -> Iterator[str]:
    """BLAS and PyTorch on one thread for the block; yields how BLAS was pinned (or why it was not)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        limits = None
        blas = "BLAS threads not pinned (threadpoolctl is not installed)"
    else:
        limits = threadpool_limits(1)
        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        blas = ", ".join(f"{i['internal_api']} {i.get('version') or ''} {i.get('architecture') or ''}" for i in infos)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield blas.strip() or "BLAS not found"
    finally:
        if torch is not None and threads is not None:
            torch.set_num_threads(threads)
        if limits is not None:
            limits.restore_original_limits()


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_gradients(
    torch: Any, params: dict[str, np.ndarray], X: np.ndarray, T: np.ndarray
) -> Callable[[], dict[str, Any]]:
    """PyTorch eager, forward and backward of the LeNet (conv relu, max pool, conv relu, max pool, dense softmax)
    with the batch-mean cross-entropy: a function returning its gradients."""
    F = torch.nn.functional
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tX, tT = torch.tensor(X), torch.tensor(T)

    def loss() -> Any:
        a = F.max_pool2d(torch.relu(F.conv2d(tX, tp["W2"], tp["b2"])), 2)
        a = F.max_pool2d(torch.relu(F.conv2d(a, tp["W4"], tp["b4"])), 2)
        z = a.reshape(a.shape[0], -1) @ tp["W6"].T + tp["b6"]
        return -(tT * torch.log_softmax(z, dim=1)).sum(dim=1).mean()

    def gradients() -> dict[str, Any]:
        for value in tp.values():
            value.grad = None
        loss().backward()
        return {k: v.grad for k, v in tp.items()}

    return gradients


def _check(name: str, got: dict[str, Any], want: dict[str, np.ndarray]) -> None:
    for key, value in want.items():
        np.testing.assert_allclose(np.asarray(got[key]), value, rtol=1e-9, atol=1e-13, err_msg=f"{name}: {key}")


def _rounds(fns: dict[str, Callable[[], object]], budget: float) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per call of each function, a sample per round, the functions interleaved in every round."""
    numbers = {}
    once = {}
    for name, fn in fns.items():
        fn()  # warm: first calls allocate
        start = time.perf_counter()
        fn()
        once[name] = max(time.perf_counter() - start, 1e-7)
        # a sample lasts ≳ 1 ms: short enough to fall between other jobs' time slices
        numbers[name] = max(1, int(0.001 / once[name]))
    per_round = sum(once[n] * numbers[n] for n in fns)
    rounds = min(500, max(9, int(budget * len(fns) / per_round)))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                n = numbers[name]
                t0, c0 = time.perf_counter(), time.thread_time()
                for _ in range(n):
                    fn()
                samples[name].append(((time.perf_counter() - t0) / n, (time.thread_time() - c0) / n))
    finally:
        gc.enable()
    return samples


def measure_batch(
    generated: types.ModuleType, api: types.ModuleType | None, batch: int, budget: float
) -> dict[str, dict[str, float]]:
    """Every implementation's median seconds per gradients call at one batch, and its ratio to PyTorch eager's."""
    params = generated.init_params()
    rng = np.random.default_rng(batch)
    X = rng.uniform(-1, 1, (batch, 1, 28, 28))
    T = np.eye(10)[rng.integers(0, 10, batch)]
    fns: dict[str, Callable[[], object]] = {"generated (NumPy)": lambda: generated.gradients(params, X, T)}
    torch = _torch()
    if torch is not None:
        reference = _torch_gradients(torch, params, X, T)
        fns[TORCH] = reference
        want = {k: v.numpy() for k, v in reference().items()}
    else:
        want = generated.gradients(params, X, T)
    _check("generated", generated.gradients(params, X, T), want)
    if api is not None:
        fns["array API (NumPy)"] = lambda: api.gradients(params, X, T)
        _check("array API (NumPy)", api.gradients(params, X, T), want)
        if torch is not None:
            tX, tT = torch.tensor(X), torch.tensor(T)
            tp = {k: torch.tensor(v) for k, v in params.items()}
            fns["array API (torch)"] = lambda: api.gradients(tp, tX, tT)
            _check("array API (torch)", {k: v.numpy() for k, v in api.gradients(tp, tX, tT).items()}, want)
    samples = _rounds(fns, budget)
    rows = {}
    for name, values in samples.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        row = {
            "cpu_seconds": statistics.median(cpus),
            "best_wall_seconds": min(walls),
            "median_wall_seconds": statistics.median(walls),
            "rounds": len(values),
        }
        if TORCH in samples:
            timed_torch = samples[TORCH]
            row["ratio_to_torch"] = statistics.median(c / tc for (_, c), (_, tc) in zip(values, timed_torch))
            row["best_wall_ratio_to_torch"] = min(walls) / min(w for w, _ in timed_torch)
        rows[name] = row
    return rows


def _child_times(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_command(repeats: int) -> dict[str, Any]:
    """`derive grad lenet w2_1_1_1_1` against `python -c "import sympy"`, alternately, ``repeats`` times each."""
    unit_args = [sys.executable, "-c", "import sympy"]
    grad_args = [sys.executable, "-m", "derive", "grad", NET, WEIGHT]
    units, grads = [], []
    for _ in range(repeats):
        units.append(_child_times(unit_args))
        grads.append(_child_times(grad_args))
    unit_wall, unit_cpu = statistics.median(w for w, _ in units), statistics.median(c for _, c in units)
    grad_wall, grad_cpu = statistics.median(w for w, _ in grads), statistics.median(c for _, c in grads)
    return {
        "command": f"derive grad {NET} {WEIGHT}",
        "repeats": repeats,
        "import_sympy": {"wall_seconds": unit_wall, "cpu_seconds": unit_cpu},
        "grad": {"wall_seconds": grad_wall, "cpu_seconds": grad_cpu},
        "wall_ratio": grad_wall / unit_wall,
        "cpu_ratio": grad_cpu / unit_cpu,
        "target": COMMAND_TARGET,
    }


def _machine(blas: str) -> dict[str, Any]:
    torch = _torch()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": None if torch is None else torch.__version__,
        "blas": blas,
        "threads": 1,
    }


def run(budget: float = 1.0, repeats: int = 3, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Measure the LeNet rows and the command; plain data (see :func:`table`)."""
    say = log or (lambda _: None)
    _torch()  # imported before one_thread() pins its threads
    model = _Loaded(load_spec(NET))
    generated = compile_module(vector_module(model), "lenet")
    try:
        import array_api_compat  # noqa: F401
    except ImportError:
        api = None
    else:
        api = compile_module(vector_module(model, ARRAY_API), "lenet_array_api")
    with one_thread() as blas:
        batches = {}
        for batch in BATCHES:
            say(f"LeNet, batch {batch}…")
            batches[batch] = measure_batch(generated, api, batch, budget)
        machine = _machine(blas)
    say(f"derive grad {NET} {WEIGHT} against import sympy, {repeats}× each…")
    command = measure_command(repeats)
    return {
        "net": "LeNet-like: 1×28×28 → conv 6@5×5 relu → max pool 2 → conv 16@5×5 relu → max pool 2 → dense 10 softmax",
        "machine": machine,
        "batches": [
            {"batch": b, "target_ratio": TARGETS[b] if _torch() is not None else None, "results": rows}
            for b, rows in batches.items()
        ],
        "command": command,
    }


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def table(data: dict[str, Any]) -> str:
    """The conv rows as Markdown: each implementation's median and ratio to PyTorch eager, then the command."""
    m = data["machine"]
    load = "" if m["load_average"] is None else f", load average {m['load_average']:.1f}"
    lines = [
        f"{data['net']}, float64, one thread ({m['blas']}); {m['processor']}, {m['cpus']} CPUs{load}, "
        f"Python {m['python']}, NumPy {m['numpy']}, PyTorch {m['torch'] or 'not installed'}",
        "",
        "| batch | implementation | CPU (median) | wall (best) | wall (median) | vs torch eager, CPU | "
        "vs torch eager, best wall | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in data["batches"]:
        for impl, row in entry["results"].items():
            ratio = row.get("ratio_to_torch")
            target = ""
            if impl == "generated (NumPy)" and ratio is not None and entry["target_ratio"] is not None:
                met = "met" if ratio <= entry["target_ratio"] else "NOT met"
                target = f"≤ {entry['target_ratio']:.1f}×: {met}"
            shown = " | " if ratio is None else f"{ratio:.2f}× | {row['best_wall_ratio_to_torch']:.2f}×"
            lines.append(
                f"| {entry['batch']} | {impl} | {_time(row['cpu_seconds'])} | {_time(row['best_wall_seconds'])} | "
                f"{_time(row['median_wall_seconds'])} | {shown} | {target} |"
            )
    c = data["command"]
    met = "met" if c["wall_ratio"] <= c["target"] else "NOT met"
    lines += [
        "",
        "| command | wall (median) | CPU | wall × import sympy | CPU × import sympy | target |",
        "|---|---|---|---|---|---|",
        f"| `python -c 'import sympy'` (the unit) | {c['import_sympy']['wall_seconds']:.2f} s | "
        f"{c['import_sympy']['cpu_seconds']:.2f} s | 1.0 | 1.0 | |",
        f"| `{c['command']}` | {c['grad']['wall_seconds']:.2f} s | {c['grad']['cpu_seconds']:.2f} s | "
        f"{c['wall_ratio']:.1f} | {c['cpu_ratio']:.1f} | ≤ {c['target']:.0f}× wall: {met} |",
    ]
    if m["torch"] is None:
        lines += ["", "Left out: PyTorch is not installed, so there is no torch eager row to compare with."]
    return "\n".join(lines) + "\n"
