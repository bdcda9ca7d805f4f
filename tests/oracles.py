"""Independent oracles. This module never imports derive.

A network here is a plain dict (:class:`Net`), written by the tests; the same
dict is turned into TOML for derive. Gradients come from:

- ``backprop``: a plain NumPy backprop written from Nielsen's chapter 2;
- ``finite_differences``: central differences of ``loss``;
- ``torch_gradients``: PyTorch autograd in float64 (when torch is installed);
- ``sympy_gradients``: ``sympy.diff`` of the fully expanded loss, built here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# activation name or formula → (numpy f, numpy f', torch f builder, sympy f builder)
ACTIVATIONS: dict[str, dict[str, Any]] = {
    "sigmoid": {
        "np": lambda z: 1 / (1 + np.exp(-z)),
        "torch": lambda t, z: t.sigmoid(z),
        "sympy": lambda sp, z: 1 / (1 + sp.exp(-z)),
    },
    "tanh": {"np": np.tanh, "torch": lambda t, z: t.tanh(z), "sympy": lambda sp, z: sp.tanh(z)},
    "relu": {
        "np": lambda z: np.maximum(z, 0.0),
        "torch": lambda t, z: t.relu(z),
        "sympy": lambda sp, z: sp.Max(z, 0),
    },
    "linear": {"np": lambda z: z, "torch": lambda t, z: z, "sympy": lambda sp, z: z},
    "softplus": {
        "np": lambda z: np.log1p(np.exp(z)),
        "torch": lambda t, z: t.log1p(t.exp(z)),
        "sympy": lambda sp, z: sp.log(1 + sp.exp(z)),
    },
    "elu": {
        "np": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
        "torch": lambda t, z: t.nn.functional.elu(z),
        "sympy": lambda sp, z: sp.Piecewise((z, z > 0), (sp.exp(z) - 1, True)),
    },
    "leaky_relu": {
        "np": lambda z: np.where(z > 0, z, 0.01 * z),
        "torch": lambda t, z: t.nn.functional.leaky_relu(z, 0.01),
        "sympy": lambda sp, z: sp.Piecewise((z, z > 0), (z / 100, True)),
    },
    "gelu": {
        "np": lambda z: 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),
        "torch": lambda t, z: t.nn.functional.gelu(z),
        "sympy": lambda sp, z: z * (1 + sp.erf(z / sp.sqrt(2))) / 2,
    },
    "x/(1 + exp(-x))": {
        "np": lambda z: z / (1 + np.exp(-z)),
        "torch": lambda t, z: z * t.sigmoid(z),
        "sympy": lambda sp, z: z / (1 + sp.exp(-z)),
    },
    "x*tanh(log(1 + exp(x)))": {
        "np": lambda z: z * np.tanh(np.log1p(np.exp(z))),
        "torch": lambda t, z: z * t.tanh(t.log1p(t.exp(z))),
        "sympy": lambda sp, z: z * sp.tanh(sp.log(1 + sp.exp(z))),
    },
    "x**2/(1 + x**2) + 0.5*x": {
        "np": lambda z: z**2 / (1 + z**2) + 0.5 * z,
        "torch": lambda t, z: z**2 / (1 + z**2) + 0.5 * z,
        "sympy": lambda sp, z: z**2 / (1 + z**2) + sp.Rational(1, 2) * z,
    },
    "1/(1 + exp(-x))": {
        "np": lambda z: 1 / (1 + np.exp(-z)),
        "torch": lambda t, z: 1 / (1 + t.exp(-z)),
        "sympy": lambda sp, z: 1 / (1 + sp.exp(-z)),
    },
}

LOSSES = ("half_sse", "sse", "mse", "bce", "cross_entropy", "logcosh")
CUSTOM_LOSSES = {"logcosh": "log(cosh(o - t))"}


@dataclass
class Net:
    """A fully connected network as plain data: the test's own description."""

    sizes: list[int]
    activations: list[str]  # one per non-input layer
    weights: list[np.ndarray]  # weights[l] of shape (sizes[l+1], sizes[l])
    bias_kinds: list[str]  # "none", "shared", "per_neuron"
    biases: list[np.ndarray]  # shape () for shared, (n,) per neuron, (0,) none
    x: np.ndarray
    t: np.ndarray
    loss: str
    learning_rate: float = 0.5
    update_biases: bool = True
    custom_loss: str = ""
    names: dict[str, Any] = field(default_factory=dict)

    # -- TOML for derive --------------------------------------------------------

    def toml(self, name: str = "oracle") -> str:
        lines = [f'name = "{name}"', 'title = "oracle network"', "[loss]"]
        lines.append(f'expr = "{self.custom_loss}"' if self.custom_loss else f'kind = "{self.loss}"')
        lines += ["[[layers]]", f"size = {self.sizes[0]}", f"values = {_list(self.x)}"]
        for i, act in enumerate(self.activations):
            lines += ["[[layers]]", f"size = {self.sizes[i + 1]}", f'activation = "{act}"']
            lines.append("weights = [" + ", ".join(_list(r) for r in self.weights[i]) + "]")
            kind = self.bias_kinds[i]
            if kind == "shared":
                lines.append(f"bias = {float(self.biases[i])!r}")
            elif kind == "per_neuron":
                lines.append(f"bias = {_list(self.biases[i])}")
        lines.append(f"targets = {_list(self.t)}")
        lines += [
            "[training]",
            f"learning_rate = {self.learning_rate!r}",
            f"update_biases = {str(self.update_biases).lower()}",
        ]
        return "\n".join(lines) + "\n"

    def parameter_names(self) -> list[str]:
        """Nielsen's default names, in derive's order (weights row by row, then biases)."""
        names = []
        for i in range(len(self.activations)):
            layer = i + 2
            n, m = self.weights[i].shape
            names += [f"w{layer}_{j}_{k}" for j in range(1, n + 1) for k in range(1, m + 1)]
            if self.bias_kinds[i] == "shared":
                names.append(f"b{layer}")
            elif self.bias_kinds[i] == "per_neuron":
                names += [f"b{layer}_{j}" for j in range(1, n + 1)]
        return names

    def flat(self) -> np.ndarray:
        parts = []
        for i in range(len(self.activations)):
            parts.append(self.weights[i].ravel())
            if self.bias_kinds[i] != "none":
                parts.append(np.atleast_1d(self.biases[i]).ravel())
        return np.concatenate(parts)

    def with_flat(self, theta: np.ndarray) -> Net:
        weights, biases, pos = [], [], 0
        for i in range(len(self.activations)):
            w = self.weights[i]
            weights.append(theta[pos : pos + w.size].reshape(w.shape))
            pos += w.size
            b = self.biases[i]
            if self.bias_kinds[i] != "none":
                size = np.atleast_1d(b).size
                biases.append(theta[pos : pos + size].reshape(b.shape))
                pos += size
            else:
                biases.append(b)
        return Net(**{**self.__dict__, "weights": weights, "biases": biases})


def _list(values: np.ndarray) -> str:
    return "[" + ", ".join(repr(float(v)) for v in np.ravel(values)) + "]"


# --------------------------------------------------------------------------
# NumPy: forward pass, loss, backprop


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def forward(net: Net) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(zs, activations) with activations[0] = x; zs[0] is unused."""
    a = net.x.astype(float)
    zs, acts = [np.zeros(0)], [a]
    for i, name in enumerate(net.activations):
        z = net.weights[i] @ a
        if net.bias_kinds[i] != "none":
            z = z + net.biases[i]
        a = _softmax(z) if name == "softmax" else ACTIVATIONS[name]["np"](z)
        zs.append(z)
        acts.append(a)
    return zs, acts


def per_output_loss(o: np.ndarray, t: np.ndarray, kind: str) -> np.ndarray:
    if kind == "half_sse":
        return 0.5 * (t - o) ** 2
    if kind == "sse":
        return (t - o) ** 2
    if kind == "mse":
        return (t - o) ** 2 / o.size
    if kind == "bce":
        return -(t * np.log(o) + (1 - t) * np.log(1 - o))
    if kind == "cross_entropy":
        return -t * np.log(o)
    if kind == "logcosh":  # a custom loss formula: expr = "log(cosh(o - t))"
        return np.log(np.cosh(o - t))
    raise ValueError(kind)


def loss(net: Net) -> float:
    _, acts = forward(net)
    return float(per_output_loss(acts[-1], net.t, net.loss).sum())


def _dloss(o: np.ndarray, t: np.ndarray, kind: str) -> np.ndarray:
    if kind == "half_sse":
        return o - t
    if kind == "sse":
        return 2 * (o - t)
    if kind == "mse":
        return 2 * (o - t) / o.size
    if kind == "bce":
        return (o - t) / (o * (1 - o))
    if kind == "cross_entropy":
        return -t / o
    if kind == "logcosh":
        return np.tanh(o - t)
    raise ValueError(kind)


def _dact(name: str, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Activation derivative: closed forms for built-ins, complex-step for formulas."""
    if name == "sigmoid" or name == "1/(1 + exp(-x))":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "linear":
        return np.ones_like(z)
    if name == "softplus":
        return 1 / (1 + np.exp(-z))
    if name == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if name == "gelu":  # Φ(z) + z·φ(z)
        return 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    f = ACTIVATIONS[name]["np"]
    return np.imag(f(z + 1e-30j)) / 1e-30  # complex step: exact to rounding


def backprop(net: Net) -> tuple[float, np.ndarray, dict[str, list[np.ndarray]]]:
    """(E, gradient in flat order, {"delta": [...], "z": [...], "a": [...]}) by BP1–BP4."""
    zs, acts = forward(net)
    L = len(net.activations)
    deltas: list[np.ndarray] = [np.zeros(0)] * (L + 1)
    g = _dloss(acts[-1], net.t, net.loss)
    if net.activations[-1] == "softmax":
        a = acts[-1]
        jac = np.diag(a) - np.outer(a, a)
        deltas[L] = jac.T @ g
    else:
        deltas[L] = g * _dact(net.activations[-1], zs[L])
    for layer in range(L - 1, 0, -1):
        deltas[layer] = (net.weights[layer].T @ deltas[layer + 1]) * _dact(net.activations[layer - 1], zs[layer])
    parts = []
    for i in range(L):
        parts.append(np.outer(deltas[i + 1], acts[i]).ravel())
        if net.bias_kinds[i] == "shared":
            parts.append(np.array([deltas[i + 1].sum()]))
        elif net.bias_kinds[i] == "per_neuron":
            parts.append(deltas[i + 1])
    return loss(net), np.concatenate(parts), {"delta": deltas, "z": zs, "a": acts}


def finite_differences(net: Net, h: float = 1e-6) -> np.ndarray:
    theta = net.flat()
    grad = np.zeros_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (loss(net.with_flat(up)) - loss(net.with_flat(down))) / (2 * h)
    return grad


def train(net: Net, steps: int) -> tuple[Net, list[float]]:
    """Plain gradient descent, biases updated only when the net says so."""
    history = []
    for _ in range(steps):
        e, grad, _ = backprop(net)
        history.append(e)
        theta = net.flat()
        step = net.learning_rate * grad
        if not net.update_biases:
            step = step * _weight_mask(net)
        net = net.with_flat(theta - step)
    history.append(loss(net))
    return net, history


def _weight_mask(net: Net) -> np.ndarray:
    parts = []
    for i in range(len(net.activations)):
        parts.append(np.ones(net.weights[i].size))
        if net.bias_kinds[i] != "none":
            parts.append(np.zeros(np.atleast_1d(net.biases[i]).size))
    return np.concatenate(parts)


# --------------------------------------------------------------------------
# PyTorch autograd


def torch_gradients(net: Net) -> tuple[float, np.ndarray]:
    import torch

    ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in net.weights]
    bs = [
        torch.tensor(np.asarray(b, dtype=float), dtype=torch.float64, requires_grad=True) if k != "none" else None
        for b, k in zip(net.biases, net.bias_kinds)
    ]
    a = torch.tensor(net.x, dtype=torch.float64)
    for i, name in enumerate(net.activations):
        z = ws[i] @ a
        if bs[i] is not None:
            z = z + bs[i]
        a = torch.softmax(z, dim=0) if name == "softmax" else ACTIVATIONS[name]["torch"](torch, z)
    t = torch.tensor(net.t, dtype=torch.float64)
    kind = net.loss
    if kind == "half_sse":
        e = 0.5 * ((t - a) ** 2).sum()
    elif kind == "sse":
        e = ((t - a) ** 2).sum()
    elif kind == "mse":
        e = ((t - a) ** 2).mean()
    elif kind == "bce":
        e = -(t * torch.log(a) + (1 - t) * torch.log(1 - a)).sum()
    elif kind == "logcosh":
        e = torch.log(torch.cosh(a - t)).sum()
    else:
        e = -(t * torch.log(a)).sum()
    e.backward()
    parts = []
    for w, b in zip(ws, bs):
        assert w.grad is not None
        parts.append(w.grad.numpy().ravel())
        if b is not None:
            assert b.grad is not None
            parts.append(np.atleast_1d(b.grad.numpy()).ravel())
    return float(e.detach()), np.concatenate(parts)


# --------------------------------------------------------------------------
# sympy.diff of the fully built loss (shallow networks only: it swells with depth)


def sympy_gradients(net: Net) -> tuple[float, np.ndarray]:
    import sympy as sp

    symbols: list[Any] = []
    values: list[float] = []
    a: list[Any] = [sp.Float(v) for v in net.x]
    for i, name in enumerate(net.activations):
        n, m = net.weights[i].shape
        w = [[sp.Symbol(f"W{i}_{j}_{k}", real=True) for k in range(m)] for j in range(n)]
        for j in range(n):
            for k in range(m):
                symbols.append(w[j][k])
                values.append(float(net.weights[i][j, k]))
        kind = net.bias_kinds[i]
        if kind == "shared":
            b = sp.Symbol(f"B{i}", real=True)
            symbols.append(b)
            values.append(float(net.biases[i]))
            bias = [b] * n
        elif kind == "per_neuron":
            bias = [sp.Symbol(f"B{i}_{j}", real=True) for j in range(n)]
            symbols += bias
            values += [float(v) for v in net.biases[i]]
        else:
            bias = [0] * n
        z = [sum(w[j][k] * a[k] for k in range(m)) + bias[j] for j in range(n)]
        if name == "softmax":
            total = sum(sp.exp(v) for v in z)
            a = [sp.exp(v) / total for v in z]
        else:
            a = [ACTIVATIONS[name]["sympy"](sp, v) for v in z]
    t = [sp.Float(v) for v in net.t]
    kind = net.loss
    if kind == "half_sse":
        e = sum((ti - oi) ** 2 for oi, ti in zip(a, t)) / 2
    elif kind == "sse":
        e = sum((ti - oi) ** 2 for oi, ti in zip(a, t))
    elif kind == "mse":
        e = sum((ti - oi) ** 2 for oi, ti in zip(a, t)) / len(a)
    elif kind == "bce":
        e = -sum(ti * sp.log(oi) + (1 - ti) * sp.log(1 - oi) for oi, ti in zip(a, t))
    elif kind == "logcosh":
        e = sum(sp.log(sp.cosh(oi - ti)) for oi, ti in zip(a, t))
    else:
        e = -sum(ti * sp.log(oi) for oi, ti in zip(a, t))
    numbers = sp.lambdify(symbols, [e, *(sp.diff(e, s) for s in symbols)], modules="math")(*values)
    return float(numbers[0]), np.array([float(v) for v in numbers[1:]])


def relative_error(a: np.ndarray | float, b: np.ndarray | float) -> float:
    """Largest componentwise relative error; a component far below the vector's scale
    (a gradient that cancels to ~0) is measured against 1% of that scale, and at least 1e-6."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(b), 1e-2 * (np.abs(b).max() if b.size else 1.0))
    scale = np.maximum(scale, 1e-6)  # so an exactly cancelling sum is compared to 1e-15 absolute
    return float(np.max(np.abs(a - b) / scale)) if a.size else 0.0


def mazur() -> Net:
    """The 2-2-2 network of Mazur's example, as the article states it."""
    return Net(
        sizes=[2, 2, 2],
        activations=["sigmoid", "sigmoid"],
        weights=[np.array([[0.15, 0.20], [0.25, 0.30]]), np.array([[0.40, 0.45], [0.50, 0.55]])],
        bias_kinds=["shared", "shared"],
        biases=[np.array(0.35), np.array(0.60)],
        x=np.array([0.05, 0.10]),
        t=np.array([0.01, 0.99]),
        loss="half_sse",
        learning_rate=0.5,
        update_biases=False,
    )


def isclose(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def agrees_with_finite_differences(ours: np.ndarray, fd: np.ndarray, rel: float = 1e-5, absolute: float = 1e-8) -> bool:
    """Central differences carry ~1e-10 of rounding (eps·E/h) and O(h²) truncation."""
    return bool(np.all(np.abs(np.asarray(ours) - fd) <= rel * np.abs(fd) + absolute))
