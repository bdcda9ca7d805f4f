"""Convolution and pooling networks computed by PyTorch autograd, from plain data. Never imports derive.

A network is a dict the tests write:

- ``shape``: the input's [C, H, W] or [C, L]; ``X``: one nested sample per entry (a batch);
- ``T``: a row of targets per sample;
- ``layers``: dicts with ``kind`` ("conv2d", "conv1d", "maxpool2d", …, "dense") and for a conv ``W`` (torch's
  layout [out][in][kh][kw]), ``b`` (a list, a number for one bias shared by every position, or None),
  ``stride``, ``padding``, ``activation``; for a pool ``kernel`` and ``stride``; for a dense layer ``W`` as
  [to][from], ``b`` and ``activation``;
- ``loss`` ("half_sse" or "cross_entropy") and ``reduction`` ("mean" or "sum").

The names follow the issue's convention (1-based): kernel weights w{l}_o_i_r_c (1-D: w{l}_o_i_c), conv biases
b{l}_o or b{l}, feature maps z{l}_c_r_k; dense weights w{l}_j_k, biases b{l}_j. :func:`toml` writes the dict for
derive.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

ACTIVATIONS = {
    "sigmoid": lambda torch, z: torch.sigmoid(z),
    "tanh": lambda torch, z: torch.tanh(z),
    "relu": lambda torch, z: torch.relu(z),
}


def _dims(kind: str) -> int:
    return 1 if kind.endswith("1d") else 2


def _pair(value: Any, d: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, list) else (value,) * d


def _forward(torch: Any, net: dict[str, Any], params: list[dict[str, Any]], x: Any) -> tuple[list, list, Any]:
    """Nets and outs of every layer after the input (maps keep their shape), and the outputs."""
    F = torch.nn.functional
    nets, outs = [], []
    a = x
    for layer, p in zip(net["layers"], params):
        kind = layer["kind"]
        if kind.startswith("conv"):
            conv = F.conv1d if _dims(kind) == 1 else F.conv2d
            z = conv(a, p["W"], None, stride=layer.get("stride", 1), padding=layer.get("padding", 0))
            if p.get("b") is not None:
                b = p["b"]
                z = z + (b.reshape(-1, *([1] * _dims(kind))) if b.dim() else b)
        elif "pool" in kind:
            d = _dims(kind)
            pool = {
                ("max", 1): F.max_pool1d,
                ("max", 2): F.max_pool2d,
                ("avg", 1): F.avg_pool1d,
                ("avg", 2): F.avg_pool2d,
            }[(kind[:3], d)]
            z = pool(a, layer["kernel"], stride=layer.get("stride", layer["kernel"]))
        else:
            flat = a.reshape(a.shape[0], -1)
            z = flat @ p["W"].T
            if p.get("b") is not None:
                z = z + p["b"]
        z.retain_grad()
        if "pool" in kind:
            out = z
        elif layer["activation"] == "softmax":
            out = torch.softmax(z, dim=1)
        else:
            out = ACTIVATIONS[layer["activation"]](torch, z)
        out.retain_grad()
        nets.append(z)
        outs.append(out)
        a = out
    return nets, outs, a


def _loss(torch: Any, net: dict[str, Any], o: Any, t: Any) -> Any:
    if net["loss"] == "half_sse":
        per = (0.5 * (t - o) ** 2).sum(dim=1)
    elif net["loss"] == "cross_entropy":
        per = -(t * torch.log(o)).sum(dim=1)
    else:
        raise ValueError(net["loss"])
    return per


def _params(torch: Any, net: dict[str, Any]) -> list[dict[str, Any]]:
    params = []
    for layer in net["layers"]:
        p: dict[str, Any] = {}
        if "W" in layer:
            p["W"] = torch.tensor(layer["W"], dtype=torch.float64, requires_grad=True)
        if layer.get("b") is not None:
            p["b"] = torch.tensor(layer["b"], dtype=torch.float64, requires_grad=True)
        params.append(p)
    return params


def _names(net: dict[str, Any], params: list[dict[str, Any]]) -> list[tuple[str, int, str, tuple[int, ...]]]:
    """(name, layer index, "W" or "b", index) for every parameter, by the issue's naming convention."""
    names = []
    for i, p in enumerate(params):
        number = i + 2
        if "W" in p:
            for index in itertools.product(*(range(n) for n in p["W"].shape)):
                names.append((f"w{number}_" + "_".join(str(v + 1) for v in index), i, "W", index))
        if "b" in p:
            if p["b"].dim() == 0:
                names.append((f"b{number}", i, "b", ()))
            else:
                names += [(f"b{number}_{j + 1}", i, "b", (j,)) for j in range(p["b"].shape[0])]
    return names


def compute(torch: Any, net: dict[str, Any]) -> dict[str, Any]:
    """E, each sample's loss, every parameter's gradient by name, and each layer's z, a and δ = ∂E[n]/∂z
    flattened per sample (channel first), sample by sample."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    params = _params(torch, net)
    nets, outs, o = _forward(torch, net, params, x)
    per = _loss(torch, net, o, t)
    total = per.mean() if net["reduction"] == "mean" else per.sum()
    per.sum().backward()  # δ of each sample's own loss
    deltas = [z.grad.reshape(z.shape[0], -1).tolist() for z in nets]
    params_b = _params(torch, net)
    _, _, o_b = _forward(torch, net, params_b, x)
    per_b = _loss(torch, net, o_b, t)
    (per_b.mean() if net["reduction"] == "mean" else per_b.sum()).backward()
    grads = {name: float(params_b[i][key].grad[index]) for name, i, key, index in _names(net, params_b)}
    return {
        "E": float(total.detach()),
        "losses": per.tolist(),
        "grads": grads,
        "z": [z.detach().reshape(z.shape[0], -1).tolist() for z in nets],
        "a": [a.detach().reshape(a.shape[0], -1).tolist() for a in outs],
        "delta": deltas,
    }


def train(torch: Any, net: dict[str, Any], steps: int, rate: float) -> dict[str, float]:
    """Every parameter by name after ``steps`` full-batch gradient-descent steps."""
    x = torch.tensor(net["X"], dtype=torch.float64)
    t = torch.tensor(net["T"], dtype=torch.float64)
    params = _params(torch, net)
    for _ in range(steps):
        _, _, o = _forward(torch, net, params, x)
        per = _loss(torch, net, o, t)
        (per.mean() if net["reduction"] == "mean" else per.sum()).backward()
        with torch.no_grad():
            for p in params:
                for value in p.values():
                    value -= rate * value.grad
                    value.grad = None
    return {name: float(params[i][key][index].detach()) for name, i, key, index in _names(net, params)}


def oracle_net(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec with numbers (a TOML table) as conv_oracle's plain data: its inputs, weights and targets."""
    layers = spec["layers"]
    net: dict[str, Any] = {
        "shape": layers[0]["shape"],
        "X": [layers[0]["values"]],
        "T": [layers[-1]["targets"]],
        "loss": spec["loss"]["kind"],
        "reduction": "sum",
        "layers": [],
    }
    for layer in layers[1:]:
        kind = layer.get("kind", "dense")
        if kind.startswith("conv"):
            entry = {"kind": kind, "W": layer["weights"], "b": layer.get("bias"), "activation": layer["activation"]}
            entry.update({k: layer[k] for k in ("stride", "padding") if k in layer})
        elif "pool" in kind:
            entry = {"kind": kind, "kernel": layer["kernel"], "stride": layer.get("stride", layer["kernel"])}
        else:
            entry = {"kind": "dense", "W": layer["weights"], "b": layer.get("bias"), "activation": layer["activation"]}
        net["layers"].append(entry)
    return net


def toml(net: dict[str, Any]) -> str:
    """The network as a derive spec."""
    single = len(net["X"]) == 1 and net.get("single", False)
    values = net["X"][0] if single else net["X"]
    targets = net["T"][0] if single else net["T"]
    lines = [
        f'name = "{net.get("name", "conv_oracle")}"',
        "[loss]",
        f'kind = "{net["loss"]}"',
        f'reduction = "{net["reduction"]}"',
        "[training]",
        f"learning_rate = {net.get('rate', 0.1)!r}",
        "[[layers]]",
        f"shape = {json.dumps(net['shape'])}",
        f"values = {json.dumps(values)}",
    ]
    last = len(net["layers"]) - 1
    for i, layer in enumerate(net["layers"]):
        lines.append("[[layers]]")
        kind = layer["kind"]
        if kind == "dense":
            lines.append(f"size = {len(layer['W'])}")
        else:
            lines.append(f'kind = "{kind}"')
        if kind.startswith("conv"):
            lines.append(f"channels = {len(layer['W'])}")
            lines.append(f"kernel = {json.dumps(list(_kernel_of(layer)))}")
            for key in ("stride", "padding"):
                if key in layer:
                    lines.append(f"{key} = {json.dumps(layer[key])}")
        if "pool" in kind:
            lines.append(f"kernel = {json.dumps(layer['kernel'])}")
            if "stride" in layer:
                lines.append(f"stride = {json.dumps(layer['stride'])}")
        if "activation" in layer:
            lines.append(f'activation = "{layer["activation"]}"')
        if "W" in layer:
            lines.append(f"weights = {json.dumps(layer['W'])}")
        if layer.get("b") is not None:
            lines.append(f"bias = {json.dumps(layer['b'])}")
        if i == last:
            lines.append(f"targets = {json.dumps(targets)}")
    return "\n".join(lines) + "\n"


def _kernel_of(layer: dict[str, Any]) -> tuple[int, ...]:
    w = layer["W"][0][0]
    return (len(w),) if not isinstance(w[0], list) else (len(w), len(w[0]))
