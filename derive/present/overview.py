"""`derive show`: the network's layers, symbols, forward pass and loss.

A big network is summarised per layer: the text lists the first
MAX_LISTED_NEURONS neurons of each layer and the first MAX_LISTED_PARAMETERS
parameters, and a net over more than MAX_LISTED_NEURONS inputs by its value
alone (its sum is never built); JSON keeps every neuron's numbers but leaves out
long sums and name lists (see the limits below). ``full`` lists everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.worked import Worked

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import sympy as sp

from ..core.layers import Pool
from ..core.network import LOSS_SYMBOL, Layer, Network
from ..core.point import LazyMapping
from ..core.rules import Activation, LayerMap
from ..spec.maps import map_words, maps_words
from ..spec.reading import BiasKind, LayerSpec
from ..spec.sequences import require_workable
from . import printing as pr
from .display import shown_value
from .report import combined
from .width import DEFAULT_WIDTH, fold

MAX_LISTED_NEURONS = 40
MAX_LISTED_PARAMETERS = 60
# JSON is for programs: every neuron's numbers, and names and sums up to these sizes
MAX_JSON_SUM = 100  # terms of a net written out
MAX_JSON_NAMES = 10_000  # weight names of a layer, and parameters


def _rule_text(rule: Activation | LayerMap | None) -> str:
    if rule is None:
        return "input"
    if rule.name == rule.formula:
        return f"f(x) = {rule.formula}"
    return f"{rule.name}: f(x) = {rule.formula}"


def _weights_entry(lspec: LayerSpec, full: bool) -> dict[str, Any]:
    """A layer's weight names as JSON: [j][k] for a dense layer, [out][in][kh][kw] for a convolution (torch's
    layout), weights [j][k] and recurrent_weights [j][k] for an rnn, none for a pool; beyond MAX_JSON_NAMES
    names (unless ``full``) only their shape."""
    rows = lspec.weight_names
    if not rows:
        return {}  # a pool has no weights
    g = lspec.geometry
    named: dict[str, list[list[str]]] = {"weights": [list(row) for row in rows]}
    shapes: dict[str, list[int]] = {"weights": [len(rows), len(rows[0])]}
    if lspec.steps:  # rows are [W | U]: the input weights, then the recurrent ones
        units = len(rows)
        named = {"weights": [list(r[:-units]) for r in rows], "recurrent_weights": [list(r[-units:]) for r in rows]}
        shapes = {"weights": [units, len(rows[0]) - units], "recurrent_weights": [units, units]}
    elif g is not None:  # a kernel per output channel: [in][kh][kw]
        shapes = {"weights": [g.out_shape[0], g.in_shape[0], *g.kernel]}
    total = sum(len(r) for r in rows)
    if not full and total > MAX_JSON_NAMES:
        return {f"{key}_shape": shape for key, shape in shapes.items()}
    if g is not None and not lspec.steps:
        return {"weights": np.reshape(np.array(named["weights"], dtype=object), shapes["weights"]).tolist()}
    return named


def _net_text(net: Network, symbol: sp.Symbol) -> str:
    """``pr.text`` of a net's definition; a dense or conv net's from its products, never building the sum."""
    products = net.net_products(symbol)
    if products is not None:
        written = pr.products_text(*products)
        if written is not None:
            return written
    return pr.text(net.net_definitions[symbol])


def overview(model: Worked, full: bool = False) -> dict[str, Any]:
    """The network as plain data; a big one summarised per layer unless ``full``."""
    if full:
        require_workable(model.spec, "derive show --full")
    net = model.network
    point = model.point
    layers = []
    for layer in net.layers:
        neurons = layer.neurons
        written = full or layer.index == 0 or net.layers[layer.index - 1].size <= MAX_JSON_SUM
        pool = "pool" in layer.spec.kind
        entry: dict[str, Any] = {
            "number": layer.number,
            "size": layer.size,
            "activation": None if layer.rule is None or pool else layer.rule.name,  # a pool has no activation
            "formula": None if layer.rule is None or pool else layer.rule.formula,
            "neurons": [],
        }
        for n in neurons:
            neuron: dict[str, Any] = {"out": n.out.name}
            if n.net is not None:
                neuron["net"] = n.net.name
                if written:
                    neuron["net_expression"] = _net_text(net, n.net)
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
        lspec = layer.spec
        entry["kind"] = lspec.kind
        if lspec.shape:
            entry["shape"] = list(lspec.shape)  # an input's [C, H, W], [C, L] or [T, D]
        if lspec.geometry is not None:  # a map layer: its maps' shape and how its window moves
            g = lspec.geometry
            entry.update(shape=list(g.out_shape), kernel=list(g.kernel), stride=list(g.stride), padding=list(g.padding))
        if lspec.steps:
            entry["steps"] = lspec.steps
        if layer.index > 0:
            entry.update(_weights_entry(lspec, full))
            entry["bias"] = lspec.bias.kind.value
            entry["bias_names"] = list(lspec.bias.names)
        layers.append(entry)
    values = model.parameter_values()
    parameter_names = model.spec.parameter_names
    listed_names = (
        parameter_names if full or len(parameter_names) <= MAX_JSON_NAMES else parameter_names[:MAX_LISTED_PARAMETERS]
    )
    data: dict[str, Any] = {
        "name": model.spec.name,
        "title": model.spec.title,
        "loss": {
            "kind": net.loss_rule.name,
            "per_output": net.loss_rule.formula,
            "mean_over_outputs": net.loss_rule.mean_over_outputs,
            "expression": pr.text(net.loss_expression),
            "value": model.loss if point is not None else None,
            "reduction": model.spec.loss.reduction,
        },
        "layers": layers,
        "parameters": {name: values[name] for name in listed_names},
        "training": {
            "learning_rate": model.spec.training.learning_rate,
            "update_biases": model.spec.training.update_biases,
            "steps": model.spec.training.steps,
        },
        "missing": net.missing_numbers(),
    }
    if len(listed_names) < len(parameter_names):
        data["parameters_omitted"] = len(parameter_names) - len(listed_names)
    if model.is_batch and model.points is not None:
        # the neurons above hold sample 1's numbers; every sample's are here, with its own loss E[n]
        data["samples"] = [
            {**{s.name: p[s] for s in sample_columns(model, full)}, "loss": p[LOSS_SYMBOL]} for p in model.points
        ]
    return data


def overview_text(
    model: Worked, digits: int = pr.DEFAULT_DIGITS, full: bool = False, width: int | None = DEFAULT_WIDTH
) -> str:
    """The network for reading; a big one summarised per layer unless ``full``; no line wider than ``width``."""
    if full:
        require_workable(model.spec, "derive show --full")
    return fold(_overview_lines(model, digits, full, width), width)


def _overview_lines(model: Worked, digits: int, full: bool, width: int | None) -> str:
    net = model.network
    point = model.point
    if model.is_batch and model.points is not None:  # the sample worked in full (Spec.worked)
        point = model.points[model.spec.worked - 1]
    spec = model.spec
    limit = None if full else MAX_LISTED_NEURONS
    lines = [f"{spec.name}: {spec.title}", ""]
    lines.append("layers:")
    for layer in net.layers:
        # a neuron by its label where that is a name (Mazur's h1), else by its output (a2_1: "2_1" is no name)
        names = ", ".join(
            n.label if layer.index > 0 and n.label[:1].isalpha() else n.out.name for n in layer.neurons[:limit]
        )
        if limit is not None and layer.size > limit:
            names += f", … ({layer.size} in all)"
        what = "input" if layer.rule is None else _rule_text(layer.rule)
        geometry = layer.spec.geometry
        if geometry is not None:
            what = map_words(layer.spec) + ("" if layer.spec.kind.startswith(("max", "avg")) else f", {what}")
        elif layer.spec.shape and len(net.layers) > 1 and net.layers[1].spec.steps:
            what = f"input, a sequence of {layer.spec.shape[0]} steps of {layer.spec.shape[1]} features"
        elif layer.spec.steps:
            units = layer.spec.exposed_size
            what = f"rnn, {units} units × {layer.spec.steps} steps, {what}"
        elif layer.spec.shape:
            what = f"input, {maps_words(layer.spec.shape)}"
        if (layer.spec.shape or layer.spec.steps) and not full:  # the first and last names say the order
            outs = layer.outs
            if layer.spec.steps or (len(net.layers) > 1 and net.layers[1].spec.steps):
                where = "unit, step" if layer.spec.steps else "feature, step"
            else:
                where = "channel, row, column" if len(layer.spec.shape) == 3 else "channel, position"
            names = f"{outs[0].name} … {outs[-1].name} ({where})"
        lines.append(f"  layer {layer.number} ({layer.size} neuron{'s' if layer.size != 1 else ''}, {what}): {names}")
        if geometry is not None and not layer.spec.weight_names:
            continue  # a pool: no parameters
        if layer.index > 0:
            bias = layer.spec.bias
            btext = {
                BiasKind.NONE: "no bias",
                BiasKind.SHARED: f"shared bias {bias.names[0] if bias.names else ''}",
            }.get(bias.kind, "biases " + ", ".join(bias.names[:8]) + (" …" if len(bias.names) > 8 else ""))
            weight_names = layer.spec.weight_names
            first, last = weight_names[0][0], weight_names[-1][-1]
            shape = "×".join(map(str, layer.spec.parameter_shape))
            if layer.spec.steps:
                units = layer.spec.exposed_size
                features = len(weight_names[0]) - units
                last_w = weight_names[-1][features - 1]
                shape = f"{units}×{features}; recurrent u{layer.number}_1_1 … {weight_names[-1][-1]} ({units}×{units})"
                first, last = weight_names[0][0], last_w
            if geometry is not None:
                shape += ": out channel, in channel, kernel " + ("row, column" if geometry.dims == 2 else "position")
            lines.append(f"    weights {first} … {last} ({shape}), {btext}")
    rule = net.loss_rule
    mean = " / (number of outputs)" if rule.mean_over_outputs else ""
    if model.is_batch:
        how = "mean" if spec.loss.reduction == "mean" else "sum"
        lines.append(f"loss: {rule.name}, E[n] = Σ_k [{rule.formula}]{mean} for sample n  (o: output, t: target)")
        lines.append(f"      E = the {how} of E[1] … E[{model.samples}] over the batch")
    else:
        lines.append(f"loss: {rule.name}, E = Σ_k [{rule.formula}]{mean}  (o: output, t: target)")
    lines.append("")
    values = model.parameter_values()
    lines.append("parameters:")
    parameter_names = spec.parameter_names
    listed_names = parameter_names if full else parameter_names[:MAX_LISTED_PARAMETERS]
    for name in listed_names:
        lines.append(f"  {name} = {pr.format_number(values[name], digits)}")
    if len(parameter_names) > len(listed_names):
        lines.append(f"  … ({len(parameter_names)} in all; --full lists them)")
    lines.append("")
    if point is None:
        lines.append("forward pass: needs " + ", ".join(net.missing_numbers()))
        lines.append("")
        for layer in net.layers[1:]:
            for n in layer.neurons[:limit]:
                assert n.net is not None
                lines.append(f"  {n.net.name} = {_sum_text(net.net_definitions[n.net], full)}")
                lines.append(f"  {n.out.name} = {_sum_text(net.out_definitions[n.out], full)}")
        lines.append(f"  E = {pr.text(net.loss_expression)}")
        return "\n".join(lines) + "\n"
    if model.is_batch:
        reduction = model.spec.loss.reduction
        worked = model.spec.worked
        lines.append(
            f"a batch of {model.samples} samples, E the {reduction} of their losses E[n]; sample {worked} in full:"
        )
        lines.append("")
    lines.append(
        "inputs: " + ", ".join(f"{s.name} = {pr.format_number(point[s], digits)}" for s in net.input_layer.outs[:limit])
    )
    lines.append("")
    lines.append("forward pass:")
    for layer in net.layers[1:]:
        # a sum over more inputs than are listed is never short enough to print: its value alone, without building it
        summed = full or net.layers[layer.index - 1].size <= MAX_LISTED_NEURONS
        listed = layer.neurons[:limit]
        # a net that cancels to rounding noise shows as 0, in its own equation and where its out is computed
        shown = _Overlay(point, {n.net: _shown_net(net, n.net, point) for n in listed if n.net is not None and summed})
        pool = layer.kind if isinstance(layer.kind, Pool) else None
        below = net.layers[layer.index - 1].outs
        for j, n in enumerate(listed):
            assert n.net is not None
            if pool is not None:  # its window, and no activation
                lines.append(fold(_pool_line(pool, layer, j, below, point, digits), width))
                lines.append(f"  {n.out.name} = {n.net.name}   (a pool has no activation)")
                continue
            if summed:
                lines.append(_equation(n.net, net.net_definitions[n.net], shown, digits, width))
            else:
                lines.append(f"  {n.net.name} = {pr.format_number(point[n.net], digits)}")
            lines.append(_equation(n.out, net.out_definitions[n.out], shown, digits, width))
        if limit is not None and layer.size > limit:
            lines.append(f"  … ({layer.size} neurons in layer {layer.number}; --full lists them)")
    lines.append("")
    targets = [n.target for n in net.output_layer.neurons if n.target is not None]
    lines.append("targets: " + ", ".join(f"{t.name} = {pr.format_number(point[t], digits)}" for t in targets[:limit]))
    loss_line = _equation(LOSS_SYMBOL, net.loss_expression, point, digits, width).replace("  ", "loss: ", 1)
    if not model.is_batch:
        lines.append(loss_line)
        return "\n".join(lines) + "\n"
    lines.append(loss_line.replace("loss: E =", f"loss: E[{model.spec.worked}] =", 1))
    lines += ["", *_samples_table(model, digits, full)]
    return "\n".join(lines) + "\n"


def _pool_line(
    pool: Pool, layer: Layer, j: int, below: tuple[sp.Symbol, ...], point: Mapping[sp.Symbol, float], digits: int
) -> str:
    """z3_1_1_1 = max(a2_1_1_1, …) = max(0.46, …) = 0.7 (a2_1_2_1), or the window's mean."""
    window = [below[k] for k in pool.window(layer, j)]
    names = ", ".join(s.name for s in window)
    values = ", ".join(pr.format_number(point[s], digits) for s in window)
    n = layer.neurons[j]
    assert n.net is not None
    value = pr.format_number(point[n.net], digits)
    if pool.maximum:
        winner = below[layer.routes[j]].name
        return f"  {n.net.name} = max({names}) = max({values}) = {value}   (the first largest: {winner})"
    return f"  {n.net.name} = mean({names}) = mean({values}) = {value}"


SAMPLE_TABLE_COLUMNS = 12  # beyond this many values a sample, the table keeps inputs, outputs, targets and E[n]


def sample_columns(model: Worked, full: bool = False) -> list[sp.Symbol]:
    """The symbols a table of samples shows: every input, net, out and target of a small network, else the
    inputs (up to 4), the outputs and the targets."""
    net = model.network
    every = list(net.input_layer.outs)
    for layer in net.layers[1:]:
        for n in layer.neurons:
            assert n.net is not None
            every += [n.net, n.out]
    every += [n.target for n in net.output_layer.neurons if n.target is not None]
    if full or len(every) <= SAMPLE_TABLE_COLUMNS:
        return every
    out = net.output_layer
    return [*net.input_layer.outs[:4], *out.outs, *(n.target for n in out.neurons if n.target is not None)]


def _samples_table(model: Worked, digits: int, full: bool) -> list[str]:
    """Every sample's numbers in a row, then E combined from the samples' losses."""
    points = model.points
    assert points is not None
    columns = sample_columns(model, full)
    header = ["n", *(s.name for s in columns), "E[n]"]
    rows = [
        [str(n), *(pr.format_number(p[s], digits) for s in columns), pr.format_number(p[LOSS_SYMBOL], digits)]
        for n, p in enumerate(points, start=1)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = [f"every sample (E[n] is sample n's own loss; sample {model.spec.worked} is the one above):"]
    lines.append("  " + "  ".join(f"{h:>{w}}" for h, w in zip(header, widths)))
    lines += ["  " + "  ".join(f"{c:>{w}}" for c, w in zip(row, widths)) for row in rows]
    count = len(points)
    mean = model.spec.loss.reduction == "mean"
    how = f"(1/{count})·(E[1] + … + E[{count}])" if mean else f"E[1] + … + E[{count}]"
    _, numbers = combined(
        [f"E[{n}]" for n in range(1, count + 1)], [p[LOSS_SYMBOL] for p in points], model.spec.loss.reduction, digits
    )
    total = model.loss
    lines += ["", f"loss of the batch: E = {how}", f"                    = {numbers}"]
    lines.append(f"                    = {pr.format_number(total, digits) if total is not None else '?'}")
    return lines


def _shown_net(net: Network, symbol: sp.Symbol, point: Mapping[sp.Symbol, float]) -> float:
    return shown_value(net.net_definitions[symbol], point[symbol], point)


class _Overlay(LazyMapping, Mapping[sp.Symbol, float]):
    """``shown`` in front of ``point``: printers look up only the symbols of one equation."""

    def __init__(self, point: Mapping[sp.Symbol, float], shown: dict[sp.Symbol, float]) -> None:
        self.point = point
        self.shown = shown

    def __getitem__(self, symbol: sp.Symbol) -> float:
        return self.shown[symbol] if symbol in self.shown else self.point[symbol]

    def __iter__(self) -> Iterator[sp.Symbol]:
        return iter(self.point)

    def __len__(self) -> int:
        return len(self.point)


def _equation(
    symbol: sp.Symbol,
    definition: sp.Expr,
    point: Mapping[sp.Symbol, float],
    digits: int,
    width: int | None = None,
) -> str:
    """``name = formula = numbers = value``; where that is wider than ``width``, the formula and value alone
    when the formula fits on a line, else the value alone."""
    expr = pr.text(definition)
    value = shown_value(definition, point[symbol], point)
    if len(expr) > 160:
        return f"  {symbol.name} = {pr.format_number(value if value == 0 else point[symbol], digits)}"
    numbers = pr.text_values(definition, point, digits)
    line = f"  {symbol.name} = {expr} = {numbers} = {pr.format_number(value, digits)}"
    if width is None or len(line) <= width:
        return line
    short = f"  {symbol.name} = {expr} = {pr.format_number(value, digits)}"
    if len(short) <= width:
        return short
    return f"  {symbol.name} = {pr.format_number(value, digits)}"


MAX_SHOWN_TERMS = 6  # a longer sum is shown by its first terms and its last


def _sum_text(expr: sp.Expr, full: bool) -> str:
    """A formula as text; a long sum (a net over many inputs) as its first terms, …, its last, unless ``full``."""
    text = pr.text(expr)
    if full or not isinstance(expr, sp.Add) or len(expr.args) <= MAX_SHOWN_TERMS:
        return text
    terms = text.split(" + ")
    if len(terms) != len(expr.args):  # signs or brackets: the split is not the terms
        return text
    return " + ".join([*terms[: MAX_SHOWN_TERMS - 2], "…", terms[-1]]) + f"  ({len(terms)} terms)"
