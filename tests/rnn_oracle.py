"""Recurrent networks computed by PyTorch autograd, from plain data. Never imports derive.

A network is a dict the tests write: ``X`` (a [T][D] sequence per sample), ``T`` (a row of targets per sample),
``rnn`` with ``W`` (H × D), ``U`` (H × H), ``b`` (a list or None) and ``activation``; ``out`` with ``W``, ``b``
and ``activation`` for the dense layer that reads the last state; ``loss`` and ``reduction``. The recurrence is
written as a loop of torch operations: h_t = f(W x_t + U h_{t−1} + b), h_0 = 0 (torch's nn.RNN has two biases).

Names, 1-based, as the issue gives them: w2_j_k, u2_j_k, b2_j, z2_j_t3 / a2_j_t3; the dense layer's w3_j_k, b3_j.
"""

from __future__ import annotations

import json
from typing import Any

ACTIVATIONS = {
    "sigmoid": lambda torch, z: torch.sigmoid(z),
    "tanh": lambda torch, z: torch.tanh(z),
    "relu": lambda torch, z: torch.relu(z),
    "softplus": lambda torch, z: torch.nn.functional.softplus(z),
}


def _params(torch: Any, net: dict[str, Any]) -> dict[str, Any]:
    t = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
    p = {"W2": t(net["rnn"]["W"]), "U2": t(net["rnn"]["U"]), "W3": t(net["out"]["W"])}
    if net["rnn"].get("b") is not None:
        p["b2"] = t(net["rnn"]["b"])
    if net["out"].get("b") is not None:
        p["b3"] = t(net["out"]["b"])
    return p


def _forward(torch: Any, net: dict[str, Any], p: dict[str, Any], x: Any) -> tuple[list, list, Any]:
    f = ACTIVATIONS[net["rnn"]["activation"]]
    h = torch.zeros(x.shape[0], p["U2"].shape[0], dtype=torch.float64)
    zs, hs = [], []
    for t in range(x.shape[1]):
        z = x[:, t] @ p["W2"].T + h @ p["U2"].T
        if "b2" in p:
            z = z + p["b2"]
        z.retain_grad()
        h = f(torch, z)
        zs.append(z)
        hs.append(h)
    z3 = h @ p["W3"].T
    if "b3" in p:
        z3 = z3 + p["b3"]
    kind = net["out"]["activation"]
    a3 = torch.softmax(z3, dim=1) if kind == "softmax" else ACTIVATIONS[kind](torch, z3)
    return zs, hs, a3


def _loss(torch: Any, net: dict[str, Any], o: Any, t: Any) -> Any:
    if net["loss"] == "half_sse":
        return (0.5 * (t - o) ** 2).sum(dim=1)
    if net["loss"] == "cross_entropy":
        return -(t * torch.log(o)).sum(dim=1)
    raise ValueError(net["loss"])


def _names(p: dict[str, Any]) -> list[tuple[str, str, tuple[int, ...]]]:
    names = []
    for key, prefix in (("W2", "w2"), ("U2", "u2"), ("b2", "b2"), ("W3", "w3"), ("b3", "b3")):
        if key not in p:
            continue
        value = p[key]
        if value.dim() == 2:
            names += [
                (f"{prefix}_{j + 1}_{k + 1}", key, (j, k)) for j in range(value.shape[0]) for k in range(value.shape[1])
            ]
        else:
            names += [(f"{prefix}_{j + 1}", key, (j,)) for j in range(value.shape[0])]
    return names


def compute(torch: Any, net: dict[str, Any]) -> dict[str, Any]:
    """E, every gradient by name, and each sample's states and δ_t = ∂E[n]/∂z_t (a row per step)."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    p = _params(torch, net)
    zs, hs, o = _forward(torch, net, p, x)
    per = _loss(torch, net, o, t)
    per.sum().backward()  # δ of each sample's own loss
    deltas = [[z.grad[n].tolist() for z in zs] for n in range(x.shape[0])]
    states = [[h[n].tolist() for h in hs] for n in range(x.shape[0])]
    nets = [[z[n].tolist() for z in zs] for n in range(x.shape[0])]
    q = _params(torch, net)
    _, _, o2 = _forward(torch, net, q, x)
    per2 = _loss(torch, net, o2, t)
    (per2.mean() if net["reduction"] == "mean" else per2.sum()).backward()
    grads = {name: float(q[key].grad[index]) for name, key, index in _names(q)}
    total = per2.mean() if net["reduction"] == "mean" else per2.sum()
    return {"E": float(total.detach()), "grads": grads, "deltas": deltas, "states": states, "nets": nets}


def train(torch: Any, net: dict[str, Any], steps: int, rate: float) -> dict[str, float]:
    """Every parameter by name after ``steps`` full-batch gradient-descent steps."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    p = _params(torch, net)
    for _ in range(steps):
        _, _, o = _forward(torch, net, p, x)
        per = _loss(torch, net, o, t)
        (per.mean() if net["reduction"] == "mean" else per.sum()).backward()
        with torch.no_grad():
            for value in p.values():
                value -= rate * value.grad
                value.grad = None
    return {name: float(p[key][index].detach()) for name, key, index in _names(p)}


def toml(net: dict[str, Any]) -> str:
    """The network as a derive spec."""
    single = net.get("single", False)
    steps, features = len(net["X"][0]), len(net["X"][0][0])
    lines = [
        f'name = "{net.get("name", "rnn_oracle")}"',
        "[loss]",
        f'kind = "{net["loss"]}"',
        f'reduction = "{net["reduction"]}"',
        "[training]",
        f"learning_rate = {net.get('rate', 0.1)!r}",
        "[[layers]]",
        f"shape = [{steps}, {features}]",
        f"values = {json.dumps(net['X'][0] if single else net['X'])}",
        "[[layers]]",
        'kind = "rnn"',
        f"size = {len(net['rnn']['W'])}",
        f'activation = "{net["rnn"]["activation"]}"',
        f"weights = {json.dumps(net['rnn']['W'])}",
        f"recurrent_weights = {json.dumps(net['rnn']['U'])}",
    ]
    if net["rnn"].get("b") is not None:
        lines.append(f"bias = {json.dumps(net['rnn']['b'])}")
    lines += [
        "[[layers]]",
        f"size = {len(net['out']['W'])}",
        f'activation = "{net["out"]["activation"]}"',
        f"weights = {json.dumps(net['out']['W'])}",
    ]
    if net["out"].get("b") is not None:
        lines.append(f"bias = {json.dumps(net['out']['b'])}")
    lines.append(f"targets = {json.dumps(net['T'][0] if single else net['T'])}")
    return "\n".join(lines) + "\n"
