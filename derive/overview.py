"""`derive show`: the network's layers, symbols, forward pass and loss."""

from __future__ import annotations

from typing import Any

import sympy as sp

from . import printing as pr
from .api import Model
from .network import LOSS_SYMBOL
from .present.display import display_point, shown_value
from .rules import Activation, LayerMap

MAX_LISTED_NEURONS = 40


def _rule_text(rule: Activation | LayerMap | None) -> str:
    if rule is None:
        return "input"
    if rule.name == rule.formula:
        return f"f(x) = {rule.formula}"
    return f"{rule.name}: f(x) = {rule.formula}"


def overview(model: Model) -> dict[str, Any]:
    """The network as plain data."""
    net = model.network
    point = model.point
    layers = []
    for layer in net.layers:
        entry: dict[str, Any] = {
            "number": layer.number,
            "size": layer.size,
            "activation": None if layer.rule is None else layer.rule.name,
            "formula": None if layer.rule is None else layer.rule.formula,
            "neurons": [],
        }
        for n in layer.neurons:
            neuron: dict[str, Any] = {"out": n.out.name}
            if n.net is not None:
                neuron["net"] = n.net.name
                neuron["net_expression"] = pr.text(net.net_definitions[n.net])
                neuron["out_expression"] = pr.text(net.out_definitions[n.out])
            if n.target is not None:
                neuron["target"] = n.target.name
            if point is not None:
                if n.net is not None:
                    neuron["net_value"] = point[n.net]
                neuron["out_value"] = point[n.out]
                if n.target is not None:
                    neuron["target_value"] = point[n.target]
            entry["neurons"].append(neuron)
        if layer.index > 0:
            entry["weights"] = [[w.name for w in row] for row in layer.weights]
            entry["bias"] = layer.spec.bias.kind
            entry["bias_names"] = list(layer.spec.bias.names)
        layers.append(entry)
    values = net.given_values()
    return {
        "name": model.spec.name,
        "title": model.spec.title,
        "loss": {
            "kind": net.loss_rule.name,
            "per_output": net.loss_rule.formula,
            "mean_over_outputs": net.loss_rule.mean_over_outputs,
            "expression": pr.text(net.loss_expression),
            "value": point[LOSS_SYMBOL] if point is not None else None,
        },
        "layers": layers,
        "parameters": {p.name: values.get(p) for p in net.parameters},
        "training": {
            "learning_rate": model.spec.training.learning_rate,
            "update_biases": model.spec.training.update_biases,
            "steps": model.spec.training.steps,
        },
        "missing": net.missing_numbers(),
    }


def overview_text(model: Model, digits: int = pr.DEFAULT_DIGITS) -> str:
    net = model.network
    point = display_point(net, model.point) if model.point is not None else None
    spec = model.spec
    lines = [f"{spec.name}: {spec.title}", ""]
    lines.append("layers:")
    for layer in net.layers:
        names = ", ".join(n.out.name if layer.index == 0 else n.label for n in layer.neurons[:MAX_LISTED_NEURONS])
        if layer.size > MAX_LISTED_NEURONS:
            names += f", … ({layer.size} in all)"
        what = "input" if layer.rule is None else _rule_text(layer.rule)
        lines.append(f"  layer {layer.number} ({layer.size} neuron{'s' if layer.size != 1 else ''}, {what}): {names}")
        if layer.index > 0:
            bias = layer.spec.bias
            btext = {"none": "no bias", "shared": f"shared bias {bias.names[0] if bias.names else ''}"}.get(
                bias.kind, "biases " + ", ".join(bias.names[:8]) + (" …" if len(bias.names) > 8 else "")
            )
            first, last = layer.weights[0][0].name, layer.weights[-1][-1].name
            lines.append(f"    weights {first} … {last} ({layer.size}×{len(layer.weights[0])}), {btext}")
    rule = net.loss_rule
    mean = " / (number of outputs)" if rule.mean_over_outputs else ""
    lines.append(f"loss: {rule.name}, E = Σ_k [{rule.formula}]{mean}  (o: output, t: target)")
    lines.append("")
    values = net.given_values()
    lines.append("parameters:")
    shown = [p for p in net.parameters][:60]
    for p in shown:
        v = values.get(p)
        lines.append(f"  {p.name} = {pr.format_number(v, digits) if v is not None else '?'}")
    if len(net.parameters) > len(shown):
        lines.append(f"  … ({len(net.parameters)} in all)")
    lines.append("")
    if point is None:
        lines.append("forward pass: needs " + ", ".join(net.missing_numbers()))
        lines.append("")
        for layer in net.layers[1:]:
            for n in layer.neurons[:MAX_LISTED_NEURONS]:
                assert n.net is not None
                lines.append(f"  {n.net.name} = {pr.text(net.net_definitions[n.net])}")
                lines.append(f"  {n.out.name} = {pr.text(net.out_definitions[n.out])}")
        lines.append(f"  E = {pr.text(net.loss_expression)}")
        return "\n".join(lines) + "\n"
    lines.append(
        "inputs: "
        + ", ".join(
            f"{s.name} = {pr.format_number(point[s], digits)}" for s in net.input_layer.outs[:MAX_LISTED_NEURONS]
        )
    )
    lines.append("")
    lines.append("forward pass:")
    for layer in net.layers[1:]:
        for n in layer.neurons[:MAX_LISTED_NEURONS]:
            assert n.net is not None
            for sym, definition in ((n.net, net.net_definitions[n.net]), (n.out, net.out_definitions[n.out])):
                lines.append(_equation(sym, definition, point, digits))
        if layer.size > MAX_LISTED_NEURONS:
            lines.append(f"  … ({layer.size} neurons in layer {layer.number})")
    lines.append("")
    targets = [n.target for n in net.output_layer.neurons if n.target is not None]
    lines.append(
        "targets: "
        + ", ".join(f"{t.name} = {pr.format_number(point[t], digits)}" for t in targets[:MAX_LISTED_NEURONS])
    )
    lines.append(_equation(LOSS_SYMBOL, net.loss_expression, point, digits).replace("  ", "loss: ", 1))
    return "\n".join(lines) + "\n"


def _equation(symbol: sp.Symbol, definition: sp.Expr, point: dict[sp.Symbol, float], digits: int) -> str:
    expr = pr.text(definition)
    if len(expr) > 160:
        return f"  {symbol.name} = {pr.format_number(point[symbol], digits)}"
    numbers = pr.text_values(definition, point, digits)
    value = shown_value(definition, point[symbol], point)
    return f"  {symbol.name} = {expr} = {numbers} = {pr.format_number(value, digits)}"
