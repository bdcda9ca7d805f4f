"""A batch of samples computed by PyTorch autograd, from plain data. This module never imports derive.

A network is a dict the tests write: ``X`` (a row per sample), ``T``, ``layers`` (each with ``W`` as
[to][from], ``b`` a list, a number for a shared bias or None, and ``activation``), ``loss`` and
``reduction``. The same dict is written as TOML for derive by :func:`toml`.
"""

from __future__ import annotations

import copy
from typing import Any

ACTIVATIONS = {
    "sigmoid": lambda torch, z: torch.sigmoid(z),
    "tanh": lambda torch, z: torch.tanh(z),
    "relu": lambda torch, z: torch.relu(z),
}


def _tensors(torch: Any, net: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    weights, biases = [], []
    for layer in net["layers"]:
        weights.append(torch.tensor(layer["W"], dtype=torch.float64, requires_grad=True))
        b = layer.get("b")
        biases.append(None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True))
    return weights, biases


def _forward(torch: Any, net: dict[str, Any], weights: list[Any], biases: list[Any], x: Any) -> tuple[list, list]:
    """Nets and outs of every layer (after the input), a row per sample; nets keep their gradients."""
    nets, outs = [], []
    a = x
    for layer, w, b in zip(net["layers"], weights, biases):
        z = a @ w.T
        if b is not None:
            z = z + b
        z.retain_grad()
        kind = layer["activation"]
        a = torch.softmax(z, dim=1) if kind == "softmax" else ACTIVATIONS[kind](torch, z)
        nets.append(z)
        outs.append(a)
    return nets, outs


def _per_sample_loss(torch: Any, kind: str, o: Any, t: Any) -> Any:
    if kind == "half_sse":
        return (0.5 * (t - o) ** 2).sum(dim=1)
    if kind == "cross_entropy":
        return -(t * torch.log(o)).sum(dim=1)
    if kind == "bce":
        return -(t * torch.log(o) + (1 - t) * torch.log(1 - o)).sum(dim=1)
    raise ValueError(kind)


def compute(torch: Any, net: dict[str, Any]) -> dict[str, Any]:
    """E, each sample's loss, forward values and δs, the batch's gradients and each sample's gradients."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    n = x.shape[0]
    weights, biases = _tensors(torch, net)
    nets, outs = _forward(torch, net, weights, biases, x)
    per = _per_sample_loss(torch, net["loss"], outs[-1], t)
    total = per.mean() if net["reduction"] == "mean" else per.sum()
    params = [p for pair in zip(weights, biases) for p in pair if p is not None]
    grads = torch.autograd.grad(total, params, retain_graph=True)
    # each sample's own gradients and δs (∂E[k]/∂net: no 1/N)
    sample_grads, sample_deltas = [], []
    for k in range(n):
        gs = torch.autograd.grad(per[k], params + nets, retain_graph=True, allow_unused=True)
        sample_grads.append([g.detach().numpy().copy() for g in gs[: len(params)]])
        sample_deltas.append([g[k].detach().numpy().copy() for g in gs[len(params) :]])
    return {
        "E": float(total.detach()),
        "per_sample": per.detach().numpy().copy(),
        "grads": [g.detach().numpy().copy() for g in grads],
        "sample_grads": sample_grads,
        "sample_deltas": sample_deltas,
        "nets": [z.detach().numpy().copy() for z in nets],
        "outs": [a.detach().numpy().copy() for a in outs],
    }


def train(torch: Any, net: dict[str, Any], steps: int, rate: float) -> tuple[dict[str, Any], list[float]]:
    """Full-batch gradient descent (every parameter updated); the trained net and the losses before each step."""
    net = copy.deepcopy(net)
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    weights, biases = _tensors(torch, net)
    params = [p for pair in zip(weights, biases) for p in pair if p is not None]
    history = []
    for _ in range(steps):
        _, outs = _forward(torch, net, weights, biases, x)
        per = _per_sample_loss(torch, net["loss"], outs[-1], t)
        total = per.mean() if net["reduction"] == "mean" else per.sum()
        history.append(float(total.detach()))
        grads = torch.autograd.grad(total, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= rate * g
    for layer, w, b in zip(net["layers"], weights, biases):
        layer["W"] = w.detach().numpy().tolist()
        if b is not None:
            layer["b"] = b.detach().numpy().tolist()
    return net, history


def toml(net: dict[str, Any], names: bool = False) -> str:
    """The spec derive reads: named neurons (h1, h2, …, y1, …) when ``names``, else Nielsen's sizes."""

    def row(values: list[float]) -> str:
        return "[" + ", ".join(repr(float(v)) for v in values) + "]"

    lines = [
        'name = "batch"',
        "[loss]",
        f'kind = "{net["loss"]}"',
        f'reduction = "{net["reduction"]}"',
        "[training]",
        f"learning_rate = {net.get('rate', 0.5)!r}",
        "update_biases = true",
        *(
            f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}"
            for key, value in net.get("training", {}).items()
        ),
        "[[layers]]",
        f"size = {len(net['X'][0])}",
        "values = [" + ", ".join(row(r) for r in net["X"]) + "]",
    ]
    for i, layer in enumerate(net["layers"]):
        last = i == len(net["layers"]) - 1
        lines.append("[[layers]]")
        if names:
            prefix = "y" if last else f"h{i + 1}_"
            lines.append("names = [" + ", ".join(f'"{prefix}{j + 1}"' for j in range(len(layer["W"]))) + "]")
        else:
            lines.append(f"size = {len(layer['W'])}")
        lines.append(f'activation = "{layer["activation"]}"')
        lines.append("weights = [" + ", ".join(row(r) for r in layer["W"]) + "]")
        b = layer.get("b")
        if isinstance(b, list):
            lines.append(f"bias = {row(b)}")
        elif b is not None:
            lines.append(f"bias = {float(b)!r}")
        if last:
            lines.append("targets = [" + ", ".join(row(r) for r in net["T"]) + "]")
    return "\n".join(lines) + "\n"
