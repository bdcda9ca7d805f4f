"""The recurrent layer's benchmark: the generated module's gradients against the same recurrence in PyTorch.

T = 20 steps of D = 8 features, H = 32 tanh units, a sigmoid output, a batch of 32, float64, in one process and
interleaved rounds (:func:`derive.bench.measure.median_times`). PyTorch's side is the recurrence written as a loop
of torch operations with autograd (nn.RNN has two biases), on one thread as the module is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..codegen.modules import VectorModule, compile_module
from ..spec.reading import parse_spec
from .measure import median_times

STEPS, FEATURES, UNITS, BATCH = 20, 8, 32, 32
SPEC = f"""
name = "rnn_bench"
[loss]
kind = "half_sse"
[[layers]]
shape = [{STEPS}, {FEATURES}]
[[layers]]
kind = "rnn"
size = {UNITS}
activation = "tanh"
bias = "per_neuron"
[[layers]]
size = 1
activation = "sigmoid"
bias = "per_neuron"
"""


def measure_rnn(budget: float = 1.0) -> dict[str, Any]:
    """Seconds per gradients call of derive's module and of the torch loop, and their ratio."""
    module = compile_module(VectorModule(parse_spec(SPEC, "<rnn bench>")).source(), "rnn_bench")
    params = module.init_params()
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.0, 1.0, (BATCH, STEPS, FEATURES))
    T = rng.uniform(0.0, 1.0, (BATCH, 1))
    fns = {"derive": lambda: module.gradients(params, X, T)}
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(1)
        tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
        tx, tt = torch.tensor(X), torch.tensor(T)

        def torch_gradients() -> object:
            for value in tp.values():
                value.grad = None
            h = torch.zeros(BATCH, UNITS, dtype=torch.float64)
            for t in range(STEPS):
                h = torch.tanh(tx[:, t] @ tp["W2"].T + h @ tp["U2"].T + tp["b2"])
            out = torch.sigmoid(h @ tp["W3"].T + tp["b3"])
            (0.5 * (tt - out) ** 2).sum(dim=1).mean().backward()
            return [value.grad for value in tp.values()]

        fns["torch loop"] = torch_gradients
    times = median_times(fns, budget=budget)
    data: dict[str, Any] = {
        "shape": {"steps": STEPS, "features": FEATURES, "units": UNITS, "batch": BATCH},
        "seconds": times,
    }
    if "torch loop" in times:
        data["ratio"] = times["derive"] / times["torch loop"]
    return data


def rnn_table(data: dict[str, Any]) -> str:
    """The recurrent benchmark as text."""
    shape = data["shape"]
    lines = [
        f"rnn: T = {shape['steps']}, D = {shape['features']}, H = {shape['units']} tanh, batch {shape['batch']}, "
        "float64, one thread (gradients per call)",
    ]
    for name, seconds in data["seconds"].items():
        lines.append(f"  {name:<12} {seconds * 1e6:10.0f} µs")
    if "ratio" in data:
        lines.append(f"  derive / torch loop: {data['ratio']:.2f}×")
    return "\n".join(lines) + "\n"
