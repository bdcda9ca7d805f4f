"""Building a :class:`LecturePlan` from a Model: every content decision, every number computed once.

The lecture runs backwards, as backpropagation does: the output layer first, then
each hidden layer towards the input. In each layer one weight is derived in full
(its factors, each substituted once, its paths, its δ) and the other parameters
of the layer get a table; a δ is defined where it first appears and reused after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.worked import Worked

import math
from dataclasses import dataclass, replace
from decimal import Decimal

import sympy as sp

from ..core.chain import (
    Derivation,
    Factor,
    count_paths,
    derive,
    derive_batch,
    evaluate,
    exact_point,
    factor_value,
)
from ..core.network import LOSS_SYMBOL, Layer, Network, Neuron
from ..core.optimizer import Optimizer
from ..core.policy import POLICY
from ..core.rules import Activation, LayerMap
from ..present.branches import piecewise_form
from ..present.display import ExactWhereLost, display_point, shown_value
from ..present.equations import (
    Contribution,
    Elided,
    EquationChain,
    Formula,
    Partial,
    Product,
    Substituted,
    Value,
    definition,
    product,
    total,
)
from ..spec.reading import BUILTIN_SUFFIX
from .plan import (
    Block,
    Claim,
    Code,
    Count,
    Diagram,
    Edge,
    Equations,
    Exercise,
    Exercises,
    Field,
    LecturePlan,
    Line,
    Math,
    MatrixForm,
    Node,
    Num,
    Options,
    Paragraph,
    Plot,
    Say,
    Section,
    Standard,
    Table,
    Text,
    say,
)
from .sources import Printed
from .teaching import bp_derivation, fast_section, mazur_step
from .update import WithUpdate, first_step, update_blocks

MAX_LISTED_PATHS = 4  # a representative weight with more paths is shown in δ form only
MAX_NOTATION_ROWS = 24  # above this, the symbol table summarises each layer
MAX_FORWARD_NEURONS = 8
MAX_TABLE_ROWS = 20  # a layer's table beyond this shows its largest gradients
LARGEST = 8
MAX_DELTA_LINES = 6
MAX_UPDATE_ROWS = 24
MAX_SAMPLE_ROWS = 24  # a batch's table of samples
MAX_COMBINED_ROWS = 32  # parameters in the table of the samples' gradients (a page)
MAX_SAMPLE_COLUMNS = 4  # samples in the table of gradients (the batch's column uses every sample)
SAMPLE_LOSS = sp.Symbol("E^{[n]}", real=True)  # sample n's own loss, as a batch's lecture writes it
BATCH_LOSS = sp.Symbol("E")  # the batch's loss, apart from the worked sample's E^[n] (the network's E symbol)
MAX_DRAWN_NEURONS = 8
MAX_LABELLED_EDGES = 10  # more labels than this crowd the drawing: the symbol table has the values
MAX_PLOT_POINTS = 400
ROUNDING_LEVEL = 1e-14  # a loss below this fraction of the first is rounding noise: the plot stops
DIAGRAM_WIDTH = 15.0  # cm: the text width is 16.6 cm
FD_STEP = 1e-6
FD_DIGITS = 17  # significant digits of E₊ and E₋ in a finite-difference check
CLOSED_FORM_LIMIT = 400
MAX_SHOWN_TERMS = 6  # a longer sum is shown by its first and last terms, "…" between
SHARED = -1  # the colour of an edge shared by every highlighted path
CHANGED_LOSS = sp.Symbol(
    "E'", real=True
)  # the loss of an exercise's changed example: never confused with E  # nodes: a closed form larger than this is not printed


@dataclass(frozen=True)
class Run:
    """The numbers a lecture needs beyond the forward pass, from one training run."""

    gradients: dict[str, float]
    old: dict[str, float]
    new: dict[str, float]  # after one update
    loss_after: float
    history: list[float]  # losses before each update and after the last
    outputs: list[list[float]]  # after the whole run, a row per sample
    fd_plus: float  # E with the checked weight moved by ± FD_STEP
    fd_minus: float


def _run(model: Worked, steps: int, checked: str) -> Run:
    engine = model.compiled()
    old = engine.parameter_values()
    _, gradients = engine.named_gradients()
    first = engine.train(1)
    new = engine.parameter_values()
    rest = engine.train(max(steps - 1, 0)) if steps > 1 else []
    history = first + rest[1:] if steps > 0 else first[:1]
    outputs = engine.outputs()
    probe = model.compiled()
    info = model.network.info[checked]
    if info.kind == "weight":
        assert info.row is not None and info.col is not None
        probe.weights[info.layer][info.row, info.col] += FD_STEP
        plus = probe.current_loss()
        probe.weights[info.layer][info.row, info.col] -= 2 * FD_STEP
        minus = probe.current_loss()
    else:  # pragma: no cover - the checked parameter is always a weight
        plus = minus = 0.0
    return Run(gradients, old, new, first[-1], history, outputs, plus, minus)


def build_plan(model: Worked, options: Options) -> LecturePlan:
    """The lecture for ``model``; raises a DeriveError when the spec has no numbers."""
    from ..spec.sequences import require_workable

    require_workable(model.spec, "derive lecture")
    from .maps import build_map_plan, has_maps

    if has_maps(model.network):  # conv and pool layers: one kernel weight's sum over its uses
        return build_map_plan(model, options)
    from .sequences import build_recurrent_plan, has_rnn

    if has_rnn(model.network):  # backpropagation through time: its own lecture
        return build_recurrent_plan(model, options)
    return _Builder(model, options).plan()


def network_diagram(model: Worked) -> Diagram:
    """The lecture's drawing of the network alone (a notebook shows it); the spec needs numbers."""
    from .sequences import has_rnn, recurrent_diagram

    if has_rnn(model.network):  # unrolled in time
        return recurrent_diagram(model)
    return _Builder(model, Options(steps=0)).diagram()


def network_sketch(model: Worked) -> Diagram:
    """A small drawing of the network with each neuron's name and no numbers (an exercise sheet shows it)."""
    from .sequences import has_rnn, recurrent_sketch

    if has_rnn(model.network):
        return recurrent_sketch(model)
    return _Builder(model, Options(steps=0)).diagram(highlight=((),))


class _Builder:
    def __init__(self, batch: Worked, options: Options) -> None:
        batch.network.require_numbers("derive lecture")
        assert batch.points is not None  # checks every sample's forward pass
        # a batch's lecture works one sample in full (Spec.worked); the update and the training use the whole batch
        self.batch = batch
        model = batch.sample(batch.spec.worked)
        assert model.point is not None
        self.model = model
        self.net: Network = model.network
        self.options = options
        self.exact = model.point
        # every number shown from the exact point where floats lost it: σ(61) is 1 in floats, and its δ 0
        self.exact_values = exact_point(self.net, model.point)
        self.point = ExactWhereLost(self.net, display_point(self.net, model.point), self.exact_values)
        self.parameters = list(model.spec.parameter_names)
        self.steps = options.steps if options.steps is not None else model.spec.training.steps
        self.memo: dict[sp.Symbol, int] = {}
        engine = model.compiled()
        # the worked sample's own gradients (∂E^[n]/∂p): the layer sections work one sample
        _, gradients = engine.named_gradients()
        self.sample_gradients = gradients
        first_layer = [w.name for row in self.net.layers[1].weights for w in row]
        # the finite-difference check and the closed form are about the weight derived in full nearest the input
        # (the same rule as representative(): its derivation is made once)
        self.checked = next((w for w in first_layer if gradients[w] != 0), first_layer[0])
        self.run = _run(batch, self.steps, self.checked)
        self.shown_factors: dict[tuple[sp.Symbol, sp.Symbol], float | None] = {}
        self.defined_deltas: set[sp.Symbol] = set()
        self.derivations: dict[str, Derivation] = {}
        self.explained: set[str] = set()  # activations whose formula and notes were shown
        self.loss_explained = False  # the note on where ∂E/∂out comes from, shown once
        self.published = dict(batch.spec.published.values) if batch.spec.published else {}
        self._slip: tuple[list[float], list[float]] | None = None  # the updated-weights slip's run, when asked
        self.optimizer = Optimizer.of(batch.spec)
        self.update_values: dict[sp.Symbol, float] = {}  # the numbers of the update's step-by-step lines
        # a loss such as E = o uses no target: then no target is named, listed or tabled (the spec may give none)
        targets = {n.target for n in self.net.output_layer.neurons if n.target is not None}
        self.uses_targets = bool(self.net.loss_expression.free_symbols & targets) and all(
            t in self.exact for t in targets
        )

    # -- helpers ------------------------------------------------------------------

    def derivation(self, name: str) -> Derivation:
        if name not in self.derivations:
            self.derivations[name] = derive(
                self.net, self.net.symbols[name], self.exact, memo=self.memo, exact=self.exact_values
            )
        return self.derivations[name]

    def gradient(self, name: str, value: float | None = None) -> float:
        """The worked sample's ∂E/∂p (or ``value``, a float the training computed), from the exact point where the
        float is 0 and the exact value is not: a saturated neuron's gradient of 1.99e-33 is not 0."""
        g = self.sample_gradients[name] if value is None else value
        if g != 0 or (value is not None and self.batch.is_batch):
            return g
        info = self.net.info[name]
        layer = self.net.layers[info.layer]
        try:
            if info.kind == "weight":
                assert info.row is not None and info.col is not None
                delta = layer.neurons[info.row].delta
                src = self.net.layers[info.layer - 1].neurons[info.col].out
                assert delta is not None
                exact = self.exact_values[delta] * self.exact_values[src]
            elif info.kind == "bias":
                deltas = [
                    n.delta
                    for n, b in zip(layer.neurons, layer.biases)
                    if b is not None and b.name == name and n.delta is not None
                ]
                exact = sp.Add(*(self.exact_values[d] for d in deltas))
            else:  # pragma: no cover - only weights and biases are parameters
                return g
            shown = float(exact)
        except (KeyError, TypeError, ValueError):
            return g
        return shown if math.isfinite(shown) else g

    def sym(self, name: str) -> sp.Symbol:
        return self.net.symbols[name]

    def target(self, n: Neuron) -> sp.Symbol | None:
        """An output neuron's target symbol, when the loss compares the output with it."""
        return n.target if self.uses_targets else None

    def neuron(self, layer: Layer, j: int) -> Field:
        """How the words name a neuron: its spec name, or "j of layer l" for a layer given by size."""
        n = layer.neurons[j]
        if layer.index == 0:
            return Math(n.out)
        if layer.spec.by_size:
            return say("neuron_of_layer", j=j + 1, layer=layer.number)
        return Text(n.label)

    def name_of(self, layer: Layer, j: int) -> Field:
        """A neuron by its name alone (h1, i1, set alike), or "j of layer l" for a layer given by size."""
        if layer.spec.by_size:
            return say("neuron_of_layer", j=j + 1, layer=layer.number)
        return Text(layer.neurons[j].label)

    def name_encodes(self, layer: Layer, j: int, k: int) -> bool:
        """Whether weight (j, k)'s name spells the neurons it joins (w_h1_i1, w2_1_1), not a number (Mazur's w1)."""
        prev = self.net.layers[layer.index - 1]
        name = layer.weights[j][k].name
        return name in (f"w_{layer.neurons[j].label}_{prev.neurons[k].label}", f"w{layer.number}_{j + 1}_{k + 1}")

    def is_output(self, layer: Layer) -> bool:
        return layer.index == len(self.net.layers) - 1

    def edges(self) -> int:
        return sum(layer.size * self.net.layers[layer.index - 1].size for layer in self.net.layers[1:])

    def defines(self, symbol: sp.Symbol, expr: sp.Expr) -> EquationChain:
        """symbol = its definition = with numbers = value; too long a definition is elided."""
        value = shown_value(expr, self.point[symbol], self.exact)
        numerator, denominator = sp.fraction(expr)
        if isinstance(denominator, sp.Add) and len(denominator.args) > MAX_SHOWN_TERMS:
            # a softmax over many outputs: one fraction, its denominator by its ends (e^{z1} + e^{z2} + ⋯ + e^{z10})
            from ..present.equations import reading_order

            ordered = reading_order(denominator)
            head, tail = tuple(ordered[:2]), tuple(ordered[-1:])
            return EquationChain(
                symbol,
                (
                    Elided(head, tail, over=numerator),
                    Elided(head, tail, over=numerator, numbers=True),
                    Value(value),
                ),
            )
        terms = sp.Add.make_args(expr) if isinstance(expr, sp.Add) else ()
        if len(terms) > MAX_SHOWN_TERMS:
            from ..present.equations import reading_order

            ordered = reading_order(expr)
            return EquationChain(symbol, (Elided(tuple(ordered[:2]), tuple(ordered[-1:])), Value(value)))
        return definition(symbol, expr, value)

    def net_chain(self, n: Neuron, layer: Layer, numbers: bool = True) -> EquationChain:
        """net = Σ w·out + b (elided for a wide layer, built from the layer: no 784-term sympy sums)."""
        assert n.net is not None
        prev = self.net.layers[layer.index - 1]
        row = layer.weights[n.index]
        bias = layer.biases[n.index]
        value = self.point[n.net]
        if prev.size <= 6:
            expr = self.net.net_definitions[n.net]
            return definition(n.net, expr, value) if numbers else EquationChain(n.net, (Formula(expr),))
        head = tuple(w * o for w, o in zip(row[:2], prev.outs[:2]))
        tail = (bias,) if bias is not None else (row[-1] * prev.outs[-1],)
        sides: tuple = (Elided(head, tail), Value(value)) if numbers else (Elided(head, tail),)
        return EquationChain(n.net, sides)

    def published_note(
        self, key: str, symbol: Field, value: float, after: int = 0, one_fewer: float | None = None
    ) -> Paragraph | None:
        """A note on what each published source prints for this quantity (``after`` N updates).

        The verdict is ``derive check``'s: right when it is the value rounded or truncated to the digits shown.
        A differing number gets a cause only when one reproduces it (:mod:`.sources`): another source printing
        the right value, one update fewer (``one_fewer`` is the quantity after ``after`` − 1 updates), or the
        hidden δs computed with the output weights already updated; otherwise the note says no cause is known.
        """
        published = self.model.spec.published
        if published is None:
            return None
        from ..core.optimizer import Optimizer

        if after and Optimizer.of(self.model.spec).settings_beyond_sgd:
            return None  # an article's numbers after an update are plain gradient descent's, not this optimiser's
        from ..check.claims import significant_digits
        from .sources import agrees, printed

        zh = self.options.lang == "zh"
        found = printed(published, key, value, zh)
        if not found:
            return None
        when: dict[str, Field | int] = {"steps": after} if after > 1 else {}
        prefix = "published_after_" if after > 1 else "published_step_" if after == 1 else "published_"
        right = [p for p in found if p.agrees]
        sentences: list[Say] = []
        if right:
            names = self.source_names([p.source for p in right])
            plural = "s" if len(right) > 1 else ""
            sentences.append(
                say(prefix + "agrees" + plural, what=symbol, printed=Text(right[0].text), source=names, **when)
            )
        for p in found:
            if p.agrees:
                continue
            digits = significant_digits(Decimal(p.text))
            fields: dict[str, Field | int] = {
                "what": symbol,
                "printed": Text(p.text),
                "value": Num(value, max(digits, self.options.digits)),
                "source": Text(p.source),
                **when,
            }
            slip = self.updated_weights_value(key, after)
            if after > 1 and one_fewer is not None and agrees(p.text, float(one_fewer)):
                sentences.append(say("published_after_one_fewer", fewer=after - 1, **fields))
            elif slip is not None and agrees(p.text, slip):
                out = self.net.output_layer
                sentences.append(
                    say(
                        prefix + "updated_weights",
                        first=Math(out.weights[0][0]),
                        last=Math(out.weights[-1][-1]),
                        slip=Num(slip, max(digits, self.options.digits)),
                        **fields,
                    )
                )
            elif self.written_slip(key, p) is not None:
                # the source's own next number, ∂E/∂out, is right: it computed with the right value, then misprinted it
                out_symbol, next_text = self.written_slip(key, p) or (LOSS_SYMBOL, "")
                sentences.append(
                    say(
                        "published_written_slip",
                        next=Math(Partial(LOSS_SYMBOL, out_symbol)),
                        next_printed=Text(next_text),
                        **fields,
                    )
                )
            elif right:
                sentences.append(say("published_copy_slip", **fields))
            else:
                sentences.append(say(prefix + "differs", **fields))
        return Paragraph(tuple(sentences), note=True)

    def written_slip(self, key: str, p: Printed) -> tuple[sp.Symbol, str] | None:
        """(out, what the source prints for ∂E/∂out) when ``key`` is an output the source misprints while its own
        ∂E/∂out agrees with the exact one: the source computed with the right output and wrote it down wrong."""
        from .sources import agrees

        out = next((o for o in self.net.output_layer.outs if o.name == key), None)
        text = p.next_number(f"dE/d{key}")
        if out is None or text is None:
            return None
        exact = evaluate(self.net.dE_dout[out], self.exact)
        return (out, text) if exact is not None and agrees(text, float(exact)) else None

    def source_names(self, names: list[str]) -> Field:
        """Sources named together: "A and B" (the word files' "and")."""
        if len(names) == 1:
            return Text(names[0])
        from .latex import words

        joiner = words(self.options.lang)["and_word"]
        return Text(", ".join(names[:-1]) + joiner + names[-1])

    def loss_printed_with_updated_weights(self, loss_after: float) -> bool:
        """Whether a source's E after one update is the slip's (hidden δs from the updated output weights)."""
        published = self.model.spec.published
        slip = self.updated_weights_value("E'", 1)
        if published is None or slip is None:
            return False
        from .sources import agrees, printed

        found = printed(published, "E'", loss_after, self.options.lang == "zh")
        return any(not p.agrees and agrees(p.text, slip) for p in found)

    def updated_weights_value(self, key: str, after: int) -> float | None:
        """``key`` (E or an output) after ``after`` updates whose hidden δs use the already-updated weights above."""
        if after < 1 or len(self.net.layers) < 3:
            return None
        if self._slip is None or len(self._slip[0]) < after + 1:
            from .sources import updated_weights_run

            self._slip = updated_weights_run(self.batch, after) or ([], [])
        losses, outputs = self._slip
        if not losses:
            return None
        stem = key.partition("@")[0].rstrip("'")
        if stem == "E":
            return losses[after]
        names = [o.name for o in self.net.output_layer.outs]
        if stem in names and len(losses) == after + 1:
            return outputs[names.index(stem)]
        return None

    # -- the plan -----------------------------------------------------------------

    def plan(self) -> LecturePlan:
        spec = self.model.spec
        lang = self.options.lang
        title = spec.title_zh if lang == "zh" and spec.title_zh else spec.title
        description = spec.description_zh if lang == "zh" and spec.description_zh else spec.description
        batch = self.batch.is_batch
        sections = [
            self.network_section(),
            self.notation_section(),
            *([self.samples_section()] if batch else []),
            self.forward_section(),
            self.loss_section(),
            *self.layer_sections(),
            self.equations_section(),
            fast_section(self),
            self.closed_section(),
            *([self.combination_section()] if batch else []),
            self.update_section(),
        ]
        training = self.training_section()
        if training is not None:
            sections.append(training)
        if self.options.exercises:
            sections.append(self.exercises_section())
        source = spec.display_source
        if source.endswith(BUILTIN_SUFFIX):  # the suffix in the lecture's language
            from .latex import words

            source = source[: -len(BUILTIN_SUFFIX)] + words(lang)["builtin_example"]
        return LecturePlan(
            lang=lang,
            title=title,
            description=description,
            source=source,
            sections=tuple(sections),
            network=self.net,
            point=WithUpdate(self.update_values, self.point) if self.update_values else self.point,
            digits=self.options.digits,
        )

    # -- the network --------------------------------------------------------------

    def network_section(self) -> Section:
        sizes = "–".join(str(layer.size) for layer in self.net.layers)
        sentences = [say("network_intro", layers=len(self.net.layers), sizes=Text(sizes))]
        if self.edges() <= MAX_LABELLED_EDGES:
            sentences.append(say("edge_labels"))
        if any(layer.spec.bias.kind == "shared" for layer in self.net.layers[1:]):
            sentences.append(say("bias_nodes" if self.edges() <= MAX_LABELLED_EDGES else "bias_boxes"))
        return Section(say("network"), (Paragraph(tuple(sentences)), self.diagram()), key="network")

    def diagram(self, highlight: tuple[tuple[sp.Symbol, ...], ...] = ()) -> Diagram:
        """The network; with ``highlight`` (paths as node symbols), a small copy with the paths coloured."""
        layers = self.net.layers
        small = bool(highlight)
        width = 6.0 if small else DIAGRAM_WIDTH
        step_x = width / max(1, len(layers) - 1)
        tall = max(min(layer.size, MAX_DRAWN_NEURONS - 1) for layer in layers) > 4
        # a small copy of a wide network (7 rows with its dots) packs its rows closer: it sits in the text
        step_y = (0.62 if tall else 0.9) if small else (2.6 if self.edges() <= MAX_LABELLED_EDGES else 1.6)
        labelled = not small and self.edges() <= MAX_LABELLED_EDGES
        nodes: list[Node] = []
        dots: list[tuple[float, float]] = []
        drawn: dict[tuple[int, int], str] = {}
        heights: dict[str, float] = {}
        tops: dict[int, float] = {}
        for layer in layers:
            shown = list(range(layer.size))
            if layer.size > MAX_DRAWN_NEURONS:
                shown = [0, 1, 2, 3, layer.size - 2, layer.size - 1]
            count = len(shown) + (1 if layer.size > MAX_DRAWN_NEURONS else 0)
            x = step_x * layer.index
            for slot, j in enumerate(shown):
                if layer.size > MAX_DRAWN_NEURONS and slot >= 4:
                    slot += 1
                y = step_y * ((count - 1) / 2 - slot)
                node_id = f"n{layer.index}x{j}"
                drawn[(layer.index, j)] = node_id
                heights[node_id] = y
                kind = "input" if layer.index == 0 else ("output" if self.is_output(layer) else "hidden")
                neuron = layer.neurons[j]
                # a small copy labels each neuron by its short name (h1), so a path can be read off it
                tag = neuron.label if small and not layer.spec.by_size else None
                nodes.append(Node(node_id, x, y, neuron.out, kind, tag=tag))
            if layer.size > MAX_DRAWN_NEURONS:
                dots.append((x, step_y * ((count - 1) / 2 - 4)))
            tops[layer.index] = step_y * (count - 1) / 2

        def colour_of(weight: sp.Symbol, src: sp.Symbol, net: sp.Symbol | None) -> int | None:
            """The first path that runs along this edge: it enters ``net`` from ``src`` (or starts at the weight)."""
            on = [c for c, path in enumerate(highlight) if net in path and (weight in path or src in path)]
            if len(on) > 1 and len(on) == len(highlight):
                return SHARED  # an edge every path runs along
            return on[0] if on else None

        edges: list[Edge] = []
        for layer in layers[1:]:
            prev = layers[layer.index - 1]
            for j, row in enumerate(layer.weights):
                for k, w in enumerate(row):
                    if (layer.index, j) not in drawn or (prev.index, k) not in drawn:
                        continue
                    src = prev.neurons[k].out
                    edges.append(
                        Edge(
                            drawn[(prev.index, k)],
                            drawn[(layer.index, j)],
                            w if labelled else None,
                            self.point[w] if labelled else None,
                            # labels of crossing edges sit at different ends, level edges in the middle
                            pos=_label_position(heights[drawn[(prev.index, k)]], heights[drawn[(layer.index, j)]]),
                            colour=colour_of(w, src, layer.neurons[j].net),
                        )
                    )
            kind = layer.spec.bias.kind
            if kind == "none" or small:
                continue
            if kind == "per_neuron":
                # each neuron's own bias, written under it (edges from boxes of "1" would cross everything)
                if labelled:
                    for j, b in enumerate(layer.biases):
                        if (layer.index, j) in drawn and b is not None:
                            node_id = drawn[(layer.index, j)]
                            nodes.append(
                                Node(
                                    f"{node_id}b",
                                    step_x * layer.index,
                                    heights[node_id] - 0.85,
                                    b,
                                    "biaslabel",
                                    self.point[b],
                                )
                            )
                continue
            bias_id = f"bias{layer.index}"
            first = layer.biases[0]
            assert first is not None
            if not labelled:
                # one box under the layer: lines from it to every neuron would cross everything
                nodes.append(
                    Node(bias_id, step_x * layer.index, -tops[layer.index] - 1.0, first, "bias", self.point[first])
                )
                continue
            # a node of its own, as Mazur draws it: below, between this layer and the one before, with a dashed
            # edge into each neuron of its layer (below the weights' labels, which sit near the edges' ends)
            low = min(tops[layer.index], tops[layer.index - 1])
            x = step_x * (layer.index - 0.3)
            nodes.append(Node(bias_id, x, -low - 1.4, first, "bias", self.point[first]))
            for j in range(layer.size):
                if (layer.index, j) in drawn:
                    edges.append(Edge(bias_id, drawn[(layer.index, j)]))
        return Diagram(tuple(nodes), tuple(edges), tuple(dots), small)

    # -- notation -----------------------------------------------------------------

    def notation_section(self) -> Section:
        net = self.net
        first = net.layers[1].neurons[0]
        assert first.net is not None
        which = say("first_output") if self.is_output(net.layers[1]) else say("first_hidden")
        intro: list[Say] = [say("notation_intro", net=Math(first.net), out=Math(first.out), which=which)]
        intro.extend(self.naming_sentences())
        blocks: list[Block] = [Paragraph(tuple(intro))]
        rows: list[tuple[Field, ...]] = []
        symbols = len(net.info) - sum(1 for i in net.info.values() if i.kind == "delta")
        for layer in net.layers if symbols <= MAX_NOTATION_ROWS else ():
            for n in layer.neurons:
                if layer.index == 0:
                    rows.append((Math(n.out), say("input"), Num(self.point[n.out])))
                    continue
                assert n.net is not None
                label = self.neuron(layer, n.index)
                rows.append((Math(n.net), say("net_of", neuron=label), Num(self.point[n.net])))
                near = self.point.offset(n.out) if isinstance(self.point, ExactWhereLost) else None
                rows.append((Math(n.out), say("out_of", neuron=label), Num(self.point[n.out], near=near)))
                target = self.target(n)
                if target is not None:
                    rows.append((Math(target), say("target_of", neuron=label), Num(self.point[target])))
        for layer in net.layers[1:] if symbols <= MAX_NOTATION_ROWS else ():
            prev = net.layers[layer.index - 1]
            for j, row in enumerate(layer.weights):
                for k, w in enumerate(row):
                    rows.append(
                        (
                            Math(w),
                            say("weight_from", src=self.name_of(prev, k), dst=self.name_of(layer, j)),
                            Num(self.point[w]),
                        )
                    )
            seen: set[sp.Symbol] = set()
            for j, b in enumerate(layer.biases):
                if b is None or b in seen:
                    continue
                seen.add(b)
                meaning = (
                    say("shared_by", layer=layer.number)
                    if layer.spec.bias.kind == "shared"
                    else say("bias_of", neuron=self.neuron(layer, j))
                )
                rows.append((Math(b), meaning, Num(self.point[b])))
        worked = self.batch.spec.worked
        header = (
            say("symbol"),
            say("meaning"),
            say("value_of_sample", n=worked) if self.batch.is_batch else say("value"),
        )
        table = Table(header, tuple(rows), (False, False, True)) if rows else self.layer_summary()
        table = replace(table, caption=say("table_follows"))  # kept on the table's page
        example = next((p for p in self.parameters if count_paths(net, self.sym(p), self.memo) > 1), None)
        blocks += [
            Paragraph((say("chain_one"),)),
            Standard("chain_one"),
            Paragraph((say("chain_many"),)),
            Standard("chain_many"),
        ]
        if example is not None:
            paths = count_paths(net, self.sym(example), self.memo)
            blocks.append(Paragraph((say("chain_example", weight=Math(self.sym(example)), n=paths),)))
        # the table after the chain rule: the short text fills the page the network's drawing leaves
        blocks.append(table)
        return Section(say("notation"), tuple(blocks), key="notation")

    def naming_sentences(self) -> list[Say]:
        """How a weight's name reads (into which neuron, from which), and the targets, before any formula uses them."""
        net = self.net
        layer = net.layers[1]
        w = layer.weights[0][0]
        key = "weight_naming" if self.name_encodes(layer, 0, 0) else "weight_joins"
        out: list[Say] = [say(key, weight=Math(w), dst=self.name_of(layer, 0), src=self.name_of(net.layers[0], 0))]
        top = net.output_layer
        first = top.neurons[0]
        if self.target(first) is not None:
            if top.size == 2:
                last = top.neurons[-1]
                assert last.target is not None
                out.append(
                    say(
                        "targets_two",
                        first=Math(first.target),
                        last=Math(last.target),
                        out_first=Math(first.out),
                        out_last=Math(last.out),
                    )
                )
            elif top.size > 1:
                last = top.neurons[-1]
                assert last.target is not None
                out.append(
                    say(
                        "targets_many",
                        first=Math(first.target),
                        last=Math(last.target),
                        out_first=Math(first.out),
                        out_last=Math(last.out),
                    )
                )
            else:
                out.append(say("targets_one", target=Math(first.target), out=Math(first.out)))
        return out

    def layer_summary(self) -> Table:
        """One row per layer: what its symbols are called and how many there are."""
        rows: list[tuple[Field, ...]] = []
        for layer in self.net.layers:
            n0 = layer.neurons[0]
            if layer.index == 0:
                rows.append(
                    (
                        Count(layer.number),
                        say("summary_inputs", first=Math(n0.out), last=Math(layer.neurons[-1].out)),
                        Count(layer.size),
                    )
                )
                continue
            w0, w1 = layer.weights[0][0], layer.weights[-1][-1]
            # the biases the forward pass adds: each neuron's own (b_1 … b_n), or the one the layer shares
            own = [b for b in layer.biases if b is not None]
            if not own:
                biases = say("summary_no_bias")
            elif layer.spec.bias.kind == "shared" or len(set(own)) == 1:
                biases = say("summary_bias", bias=Math(own[0]))
            else:
                biases = say("summary_biases", first=Math(own[0]), last=Math(own[-1]))
            names: dict[str, Field | int] = {
                "net": Math(n0.net) if n0.net is not None else Count(0),
                "out": Math(n0.out),
                "first": Math(w0),
                "last": Math(w1),
                "biases": biases,
            }
            meaning = (
                say("summary_output", target=Math(n0.target), **names)
                if self.target(n0) is not None
                else say("summary_layer", **names)
            )
            rows.append((Count(layer.number), meaning, Count(layer.size)))
        return Table(
            (say("layer"), say("meaning"), say("neurons")),
            tuple(rows),
            (True, False, True),
            note=say("summary_note", n=len(self.parameters)),
            wrap=1,  # the names of a layer with targets are long: the column wraps within the page
        )

    # -- forward pass ---------------------------------------------------------------

    def forward_section(self) -> Section:
        net = self.net
        blocks: list[Block] = [Paragraph((say("forward_intro"),))]
        for layer in net.layers[1:]:
            blocks.extend(self.activation_blocks(layer))
            lines: list[Line] = []
            # a wide layer's nets are long even elided: three neurons show the pattern
            shown = layer.neurons[: MAX_FORWARD_NEURONS if net.layers[layer.index - 1].size <= 6 else 3]
            for n in shown:
                assert n.net is not None
                lines.append(Line(self.net_chain(n, layer)))
                lines.append(Line(self.defines(n.out, net.out_definitions[n.out])))
            blocks.append(Equations(tuple(lines)))
            if layer.size > len(shown):
                blocks.append(Paragraph((say("more_neurons", n=layer.size - len(shown), layer=layer.number),)))
            for n in shown:
                for symbol in (n.net, n.out):
                    if symbol is not None:
                        note = self.published_note(symbol.name, Math(symbol), self.exact[symbol])
                        if note is not None:
                            blocks.append(note)
        return Section(say("forward"), tuple(blocks), key="forward")

    def activation_blocks(self, layer: Layer) -> list[Block]:
        """What the layer's activation is, displayed with its derivative; the "why" notes once per activation."""
        rule = layer.rule
        if isinstance(rule, LayerMap):
            return [Paragraph((say("softmax_is", layer=layer.number),))]
        assert isinstance(rule, Activation)
        from ..core.rules import X, Y

        name = rule.name if rule.name != rule.formula else "f"
        if rule.formula in self.explained:
            return [Paragraph((say("activation_again", layer=layer.number, name=Code(name)),))]
        self.explained.add(rule.formula)
        f, fprime = sp.Symbol("f(x)", real=True), sp.Symbol("f'(x)", real=True)
        # a formula with a kink at 0 (elu, leaky_relu) is shown as its two cases
        derivative: list = [Formula(piecewise_form(rule.fprime, X))]
        if rule.fprime_in_out is not None and rule.fprime_in_out.free_symbols:
            derivative.append(Formula(rule.fprime_in_out.xreplace({Y: f})))
        blocks: list[Block] = [
            Paragraph((say("activation_is", layer=layer.number, name=Code(name)),)),
            Equations(
                (
                    Line(EquationChain(f, (Formula(piecewise_form(rule.f, X)),))),
                    Line(EquationChain(fprime, tuple(derivative))),
                )
            ),
        ]
        if len(derivative) > 1:
            key = "why_in_out" if rule.name in ("sigmoid", "tanh") else "why_in_out_other"
            blocks.append(Paragraph((say(key),), note=True))
        if rule.name in ("sigmoid", "tanh"):
            blocks.append(Paragraph((say("why_saturation"),), note=True))
        return blocks

    # -- the loss ----------------------------------------------------------------

    def loss_section(self) -> Section:
        net = self.net
        expr = net.loss_expression
        value = self.exact[LOSS_SYMBOL]
        # a term whose coefficient is 0 vanishes: a target of 0, and for bce 1 − target with a target of 1
        # (no −0·log(…) on the page, whichever log it multiplies)
        fixed = {
            n.target: sp.Integer(int(self.point[n.target]))
            for n in net.output_layer.neurons
            if n.target is not None and self.uses_targets and self.point[n.target] in (0, 1)
        }
        zeros = {t: v for t, v in fixed.items() if v == 0}
        substituted = expr.xreplace(fixed) if fixed else expr
        vanished = _term_count(expr) - _term_count(substituted)
        sides: list = [Formula(expr)]
        if len(net.output_layer.neurons) <= 4:
            sides.append(Substituted(substituted))
        sides.append(Value(value))
        kind = net.loss_rule.name
        targets = {n.target for n in net.output_layer.neurons if n.target is not None}
        if kind != "custom":
            intro = say("loss_intro", name=say("loss_" + kind))
        else:
            intro = say("loss_intro_custom" if expr.free_symbols & targets else "loss_intro_custom_no_target")
        blocks: list[Block] = [
            Paragraph((intro,)),
            Equations((Line(EquationChain(LOSS_SYMBOL, tuple(sides))),)),
        ]
        if vanished > 0 and len(net.output_layer.neurons) <= 4:
            # "target 0" when that alone explains every vanished term; else the coefficient 1 − target too
            only_zeros = _term_count(expr) - _term_count(expr.xreplace(zeros)) == vanished
            blocks.append(Paragraph((say("zero_targets" if only_zeros else "zero_coefficients"),), note=True))
        if kind == "mse" and net.output_layer.size > 1:  # the ½ of two outputs is their mean, not ½ of half_sse
            factor = Math(sp.Rational(1, net.output_layer.size))
            blocks.append(Paragraph((say("mse_mean", n=net.output_layer.size, factor=factor),)))
        if kind == "bce" and isinstance(net.output_layer.rule, LayerMap):
            blocks.append(Paragraph((say("bce_softmax"),), note=True))
        note = self.published_note("E", Math(LOSS_SYMBOL), value)
        if note is not None:
            blocks.append(note)
        return Section(say("loss"), tuple(blocks), key="loss")

    # -- gradients, layer by layer from the output back ---------------------------------

    def layer_sections(self) -> list[Section]:
        out: list[Section] = []
        for layer in reversed(self.net.layers[1:]):
            out.append(self.layer_section(layer))
        return out

    def layer_section(self, layer: Layer) -> Section:
        output = self.is_output(layer)
        title = say("output_weights", layer=layer.number) if output else say("hidden_weights", layer=layer.number)
        representative = self.representative(layer)
        intro = self.layer_intro(layer, representative)
        subsections = [self.full_derivation(layer, representative)]
        others = self.others(layer, representative)
        if others is not None:
            subsections.append(others)
        return Section(title, (Paragraph((intro,)),), tuple(subsections), key=f"layer{layer.number}")

    def layer_intro(self, layer: Layer, weight: sp.Symbol) -> Say:
        """How a weight of this layer reaches E, true for this layer: the paths are counted, not assumed."""
        if self.is_output(layer):
            return say("output_intro_softmax" if isinstance(layer.rule, LayerMap) else "output_intro")
        above = self.net.layers[layer.index + 1]
        paths = count_paths(self.net, weight, self.memo)
        if paths == 1:
            return say("hidden_intro_one")  # one neuron above it all the way: one path, no sum
        if self.is_output(above) and isinstance(above.rule, LayerMap) and paths == above.size * above.size:
            return say("hidden_intro_softmax", n=above.size, paths=paths)  # each net feeds every softmax output
        if self.is_output(above) and isinstance(above.rule, Activation) and paths == above.size:
            return say("hidden_intro")  # one path through each neuron of the output layer
        return say("hidden_intro_deep")

    def representative(self, layer: Layer) -> sp.Symbol:
        """The weight derived in full: the layer's first, unless its gradient is 0 (an input of 0 teaches nothing)."""
        weights = [w for row in layer.weights for w in row]
        return next((w for w in weights if self.sample_gradients[w.name] != 0), weights[0])

    def factor_line(self, f: Factor) -> Line:
        return Line(definition(Partial(f.of, f.wrt), f.expr, f.value))

    def full_derivation(self, layer: Layer, weight: sp.Symbol) -> Section:
        d = self.derivation(weight.name)
        blocks: list[Block] = []
        lhs = Partial(LOSS_SYMBOL, weight)
        info = self.net.info[weight.name]
        assert info.row is not None
        neuron = layer.neurons[info.row]
        if d.paths and len(d.paths) <= MAX_LISTED_PATHS:
            new: list[Line] = []
            known = 0  # factors shown in an earlier derivation (a factor shared by this one's paths is new once)
            before = set(self.shown_factors)
            for path in d.paths:
                for f in path.factors:
                    key = (f.of, f.wrt)
                    if key in self.shown_factors:
                        known += key in before
                        continue
                    self.shown_factors[key] = f.value
                    # a factor on one path only takes that path's colour; shared ones stay black
                    on = [i for i, p in enumerate(d.paths) if any((g.of, g.wrt) == key for g in p.factors)]
                    colour = on[0] if len(d.paths) > 1 and len(on) == 1 else None
                    new.append(Line(self.factor_line(f).chain, colour=colour))
            count = (
                say("paths_count", weight=Math(weight), n=d.path_count)
                if d.path_count > 1
                else say("path_one", weight=Math(weight))
            )
            blocks.append(Paragraph((count,)))
            blocks.append(self.diagram(tuple(p.nodes[::-1] for p in d.paths)))
            caption = say("new_factors") if known else say("factors")
            blocks.append(Equations(tuple(new), caption))
            blocks.extend(self.loss_factor_note(d))
            if known:
                blocks.append(Paragraph((say("known_factors"),)))
            if len(d.paths) == 1:
                path = d.paths[0]
                chain = product(
                    lhs,
                    tuple(Partial(f.of, f.wrt) for f in path.factors),
                    tuple(f.value for f in path.factors),
                    path.value,
                )
                blocks.append(Equations((Line(chain),), say("product")))
            else:
                common = set.intersection(*(set(p.nodes) for p in d.paths))
                lines = []
                for i, path in enumerate(d.paths):
                    via = tuple(
                        s for s in reversed(path.nodes) if s not in common and self.net.info[s.name].kind == "out"
                    )
                    chain = product(
                        Contribution(LOSS_SYMBOL, weight, via),
                        tuple(Partial(f.of, f.wrt) for f in path.factors),
                        tuple(f.value for f in path.factors),
                        path.value,
                    )
                    lines.append(Line(chain, colour=i))
                blocks.append(Equations(tuple(lines), say("contributions")))
                blocks.append(
                    Equations((Line(total(lhs, tuple(p.value for p in d.paths), d.value)),), say("sum_of_paths"))
                )
                if self.options.mazur_steps and not self.is_output(layer):
                    blocks.extend(mazur_step(self, layer, info.row))
        else:
            folded = "folded_output" if self.is_output(layer) else "folded"
            blocks.append(Paragraph((say(folded, weight=Math(weight), n=d.path_count),)))
        # the δ form: this neuron's δ, defined here if it is new, then BP4
        delta_lines = self.delta_lines(layer, [neuron])
        term = d.terms[0]
        bp4 = definition(lhs, term.expr, d.value)
        # the caption refers to what stands above it: listed factors ("the first factors", "the same"), or nothing
        listed = bool(d.paths) and len(d.paths) <= MAX_LISTED_PATHS
        if not self.is_output(layer):
            delta_caption = "delta_form_hidden" if listed else "delta_form_hidden_folded"
        elif isinstance(layer.rule, LayerMap):  # δ sums over the softmax's outputs
            delta_caption = "delta_form_output_softmax" if listed else "delta_form_output_folded"
        else:
            delta_caption = "delta_form_output"
        blocks.append(Equations((*delta_lines, Line(bp4)), say(delta_caption, delta=Math(term.delta))))
        if self.is_output(layer) and isinstance(layer.rule, LayerMap) and self.net.loss_rule.name == "cross_entropy":
            blocks.append(Paragraph((say("why_softmax_ce"),), note=True))
        if not self.is_output(layer) and layer.index == len(self.net.layers) - 2:
            blocks.append(Paragraph((say("why_old_weights"),), note=True))
        return Section(say("derivative_of", weight=Math(weight)), tuple(blocks), key=f"full_{weight.name}")

    def loss_factor_note(self, d: Derivation) -> list[Block]:
        """Once: ∂E/∂out is the derivative of that output's own term of E (the others do not contain it)."""
        factor = next((f for p in d.paths for f in p.factors if f.of == LOSS_SYMBOL), None)
        if self.loss_explained or factor is None:
            return []
        self.loss_explained = True
        out = factor.wrt
        neuron = self.net.neuron_of(out)
        outputs = self.net.output_layer
        if neuron.target is None or not self.uses_targets:
            return []  # E = o: no term of a target to explain
        term = self.net.loss_rule.term(out, neuron.target, outputs.size)
        chain = EquationChain(Partial(LOSS_SYMBOL, out), (Formula(sp.Derivative(term, out)), Formula(factor.expr)))
        one = "_one" if outputs.size == 1 else ""  # E of one output has no other terms to drop
        if self.net.loss_rule.name == "half_sse":
            note = say("why_dE_dout_half" + one, out=Math(out), term=Math(term))
        else:
            note = say("why_dE_dout" + one, out=Math(out))
        return [Paragraph((note,), note=True, math=(Line(chain),))]  # the derivation inside the box

    def delta_lines(self, layer: Layer, neurons: list[Neuron]) -> list[Line]:
        """δ of each neuron not yet defined: for the output layer as the product of its first factors."""
        lines = []
        for n in neurons:
            assert n.delta is not None and n.net is not None
            if n.delta in self.defined_deltas:
                continue
            self.defined_deltas.add(n.delta)
            expr = self.net.delta_definitions[n.delta]
            value = self.point[n.delta]
            chain = definition(n.delta, expr, value)
            if self.is_output(layer) and not isinstance(layer.rule, LayerMap):
                # δ = ∂E/∂out · ∂out/∂net: each factor substituted once (here, or earlier), δ by their values
                factors = (
                    (LOSS_SYMBOL, n.out, self.net.dE_dout[n.out]),
                    (n.out, n.net, self.net.dout_dnet(n.out, n.net)),
                )
                values = []
                for of, wrt, factor in factors:
                    exact = factor_value(self.net, factor, self.exact_values)  # as the factor's own line shows it
                    v = float(exact) if exact is not None else evaluate(factor, self.exact)
                    values.append(v)
                    if (of, wrt) not in self.shown_factors:
                        self.shown_factors[(of, wrt)] = v
                        lines.append(Line(definition(Partial(of, wrt), factor, v)))
                chain = product(n.delta, tuple(Partial(of, wrt) for of, wrt, _ in factors), tuple(values), value)
            elif not self.is_output(layer) and len(self.net.layers[layer.index + 1].neurons) > MAX_SHOWN_TERMS:
                # a wide layer above: the sum over its neurons is shown by its ends (BP2 in full is in the text)
                nxt = self.net.layers[layer.index + 1]
                terms = [m.delta * row[n.index] for m, row in zip(nxt.neurons, nxt.weights) if m.delta is not None]
                factor = self.net.dout_dnet(n.out, n.net)
                chain = EquationChain(n.delta, (Elided(tuple(terms[:2]), tuple(terms[-1:]), factor), Value(value)))
            # a hidden δ of a narrow layer: its formula with every number in it, the same for each neuron
            lines.append(Line(chain))
        return lines

    def others(self, layer: Layer, representative: sp.Symbol) -> Section | None:
        """The rest of the layer: new δs, then a table (or its largest gradients), then a shared bias."""
        prev = self.net.layers[layer.index - 1]
        rows: list[tuple[float, tuple[Field, ...]]] = []
        for j, row in enumerate(layer.weights):
            n = layer.neurons[j]
            assert n.delta is not None
            for k, w in enumerate(row):
                if w == representative:
                    continue
                src = prev.neurons[k].out
                # an out shown as 0 (rounding noise of a net that cancels) makes its product 0 on the page too
                g = 0.0 if self.point[src] == 0 else self.gradient(w.name)
                rows.append(
                    (
                        g,
                        (
                            Math(w),
                            Math(EquationChain(src, (Value(self.point[src]),))),
                            Math(EquationChain(n.delta, (Value(self.point[n.delta]),))),
                            Num(g),
                        ),
                    )
                )
        if layer.spec.bias.kind == "per_neuron":
            for j, b in enumerate(layer.biases):
                n = layer.neurons[j]
                assert b is not None and n.delta is not None
                g = self.gradient(b.name)
                rows.append(
                    (g, (Math(b), Num(1.0), Math(EquationChain(n.delta, (Value(self.point[n.delta]),))), Num(g)))
                )
        blocks: list[Block] = []
        pending = [n for n in layer.neurons if n.delta not in self.defined_deltas]
        if pending:
            listed = pending[:MAX_DELTA_LINES]
            lines = self.delta_lines(layer, listed)
            blocks.append(Equations(tuple(lines), say("other_deltas")))
            if len(pending) > len(listed):
                for n in pending[len(listed) :]:
                    assert n.delta is not None
                    self.defined_deltas.add(n.delta)
                blocks.append(Paragraph((say("more_deltas", n=len(pending) - len(listed)),)))
        if rows:
            header = (say("parameter"), say("dnet_dp"), say("delta"), say("gradient"))
            note = None
            shown = rows
            if len(rows) > MAX_TABLE_ROWS:
                shown = sorted(rows, key=lambda r: -abs(r[0]))[:LARGEST]
                rest = [r[0] for r in rows if r not in shown]
                zeros = sum(1 for g in rest if g == 0)
                zero_words = (
                    say("largest_no_zero")
                    if zeros == 0
                    else say("largest_one_zero")
                    if zeros == 1
                    else say("largest_zeros", n=zeros)
                )
                note = say(
                    "largest_note",
                    shown=len(shown),
                    n=len(rows),
                    bound=Num(max(abs(g) for g in rest)),
                    zeros=zero_words,
                )
            blocks.append(
                Table(header, tuple(r for _, r in shown), (False, True, True, True), note, caption=say("table_intro"))
            )
        if layer.spec.bias.kind == "shared":
            b = layer.biases[0]
            assert b is not None
            deltas = [n.delta for n in layer.neurons if n.delta is not None]
            g = self.gradient(b.name)
            expr = sp.Add(*deltas[:6]) if len(deltas) <= 6 else None
            chain = (
                definition(Partial(LOSS_SYMBOL, b), expr, g)
                if expr is not None
                else EquationChain(Partial(LOSS_SYMBOL, b), (Elided(tuple(deltas[:2]), tuple(deltas[-1:])), Value(g)))
            )
            shared = "shared_bias" if len(deltas) > 1 else "shared_bias_one"  # a layer of one neuron
            blocks.append(Equations((Line(chain),), say(shared, bias=Math(b))))
        if not blocks:
            return None
        return Section(say("other_parameters", layer=layer.number), tuple(blocks), key=f"others{layer.number}")

    # -- BP1–BP4 -------------------------------------------------------------------

    def equations_section(self) -> Section:
        net = self.net
        out = net.output_layer
        below = net.layers[-2]  # the layer under the output: hidden, or the inputs when there is none
        o = out.neurons[0]
        w = out.weights[0][0]
        assert o.net is not None and o.delta is not None
        rows: list[tuple[Field, ...]] = [
            (say("n_layers"), Count(out.number), say("m_layers", first=Count(1), last=Count(out.number))),
            (say("n_a"), Math(o.out), say("m_a")),
            (say("n_z"), Math(o.net), say("m_z")),
            (
                say("n_w"),
                Math(w),
                say("m_w", src=self.name_of(below, 0), dst=self.name_of(out, 0)),
            ),
            *(
                [(say("n_bias"), Math(out.biases[0]), say("m_bias"))]
                if out.biases and out.biases[0] is not None
                else []
            ),
            (say("n_delta"), Math(o.delta), say("m_delta")),
            (say("n_cost"), Math(LOSS_SYMBOL), say("m_cost")),
        ]
        blocks: list[Block] = [
            Paragraph((say("bp_intro"),)),
            Table((say("nielsen"), say("here"), say("meaning")), tuple(rows), (False, False, False), wrap=2),
            Paragraph((say("bp_then"),)),
            Standard("bp"),
        ]
        if isinstance(out.rule, LayerMap):
            blocks.append(Paragraph((say("bp1_softmax"),)))
        blocks.extend(bp_derivation(self))
        blocks.append(Paragraph((say("bp_seen" if len(net.layers) > 2 else "bp_seen_no_hidden"),)))
        if self.batch.is_batch:  # BP3 and BP4 are one sample's; a batch's gradient is their mean (or sum)
            blocks.append(Paragraph((say("bp_batch_" + self.batch.spec.loss.reduction, n=self.batch.samples),)))
        matrices: list[Block] = []
        for layer in reversed(net.layers[1:]):
            prev = net.layers[layer.index - 1]
            if layer.size <= 4 and prev.size <= 4:
                matrices.append(
                    MatrixForm(
                        layer.number,
                        tuple(tuple(Partial(LOSS_SYMBOL, w) for w in row) for row in layer.weights),
                        layer.deltas,
                        prev.outs,
                    )
                )
        if matrices:
            blocks.append(Paragraph((say("matrix_form"),)))
            blocks.extend(matrices)
        return Section(say("deltas"), tuple(blocks), key="bp")

    # -- closed form -----------------------------------------------------------------

    def closed_section(self) -> Section:
        """∂E/∂w of the checked weight in the activations (σ(…), tanh(…)) of named nets."""
        weight = self.sym(self.checked)
        d = self.derivation(self.checked)
        lhs = Partial(LOSS_SYMBOL, weight)
        if any(isinstance(layer.rule, LayerMap) for layer in self.net.layers):
            # softmax couples a layer's outputs: no σ(net)-per-neuron form to write
            return Section(say("closed_form"), (Paragraph((say("closed_softmax", quantity=Math(lhs)),)),), key="closed")
        expr = d.delta_expression
        definitions: dict[sp.Symbol, sp.Expr] = dict(self.net.delta_definitions)
        functions = self.activation_functions()
        for layer in self.net.layers[1:]:
            for n in layer.neurons:
                assert n.net is not None
                if layer.index in functions:
                    definitions[n.out] = functions[layer.index](n.net)
                elif isinstance(layer.rule, Activation):  # linear: out = net
                    definitions[n.out] = n.net
        for _ in range(len(self.net.layers) * 2):
            expr = expr.xreplace({s: definitions[s] for s in expr.free_symbols if s in definitions})
        if sp.count_ops(expr) > CLOSED_FORM_LIMIT:
            return Section(
                say("closed_form"), (Paragraph((say("closed_too_large", quantity=Math(lhs)),)),), key="closed"
            )
        nets = sorted(
            (s for s in expr.free_symbols if self.net.info.get(s.name) and self.net.info[s.name].kind == "net"),
            key=lambda s: (self.net.info[s.name].layer, self.net.info[s.name].row or 0),
        )
        if sp.count_ops(expr) > CLOSED_FORM_LIMIT // 4 and len(self.net.layers) > 3:
            return Section(
                say("closed_form"), (Paragraph((say("closed_too_large", quantity=Math(lhs)),)),), key="closed"
            )
        lines = [Line(EquationChain(lhs, (Formula(expr),)))]
        outs = {k: v for k, v in definitions.items() if self.net.info[k.name].kind == "out"}
        # every net used is defined: in the closed form, or in another net's definition (net_o1 uses net_h2)
        chains: dict[sp.Symbol, EquationChain] = {}
        todo = list(nets)
        while todo:
            n = todo.pop()
            if n in chains:
                continue
            chain = self.net_chain(self.net.neuron_of(n), self.net.layers[self.net.info[n.name].layer], numbers=False)
            side = chain.sides[0]
            if isinstance(side, Formula):  # its inputs written as activations of the nets below too
                written = side.expr.xreplace(outs)
                chain = EquationChain(n, (Formula(written),))
                todo.extend(s for s in written.free_symbols if self._is_net(s))
            chains[n] = chain
        order = sorted(chains, key=lambda s: (self.net.info[s.name].layer, self.net.info[s.name].row or 0))
        where = [Line(chains[n]) for n in order]
        shown = [expr] + [s.expr for c in chains.values() for s in c.sides if isinstance(s, Formula)]
        names = self.function_sentences(functions, shown)
        return Section(
            say("closed_form"),
            (
                Paragraph((*names, say("closed_intro", quantity=Math(lhs)))),
                Equations(tuple(lines)),
                Equations(tuple(where), say("closed_where")),
            ),
            key="closed",
        )

    def _is_net(self, s: sp.Basic) -> bool:
        info = self.net.info.get(getattr(s, "name", ""))
        return info is not None and info.kind == "net"

    def activation_functions(self) -> dict[int, sp.FunctionClass]:
        """The function each layer's activation is written as in the closed form, by layer index.

        tanh is tanh, as the forward pass names it; any other activation is the forward pass's f when every
        such layer uses the same one, else f with the layer's number (f₂, f₃): one name never means two functions.
        """
        layers = [
            layer
            for layer in self.net.layers[1:]
            if isinstance(layer.rule, Activation) and layer.rule.name not in ("linear", "tanh")
        ]
        one = len({layer.rule.formula for layer in layers if isinstance(layer.rule, Activation)}) <= 1
        functions: dict[int, sp.FunctionClass] = {
            layer.index: sp.tanh
            for layer in self.net.layers[1:]
            if isinstance(layer.rule, Activation) and layer.rule.name == "tanh"
        }
        for layer in layers:
            functions[layer.index] = sp.Function("f" if one else f"f_{layer.number}", real=True)
        return functions

    def function_sentences(self, functions: dict[int, sp.FunctionClass], shown: list[sp.Expr]) -> list[Say]:
        """Which activation each f of the closed form is, with its layers (tanh names itself)."""
        used = {a.func for e in shown for a in e.atoms(sp.Function)}
        by_function: dict[sp.FunctionClass, list[Layer]] = {}
        for index, function in functions.items():
            if function is not sp.tanh and function in used:
                by_function.setdefault(function, []).append(self.net.layers[index])
        out = []
        x = sp.Symbol("x", real=True)
        for function, layers in by_function.items():
            rule = layers[0].rule
            assert isinstance(rule, Activation)
            name: Field = Code(rule.name) if rule.name != rule.formula else Math(rule.f)
            if len(layers) == 1:
                out.append(say("closed_f_one", f=Math(function(x)), name=name, layer=layers[0].number))
            else:
                listed = self.source_names([str(layer.number) for layer in layers])  # "2 and 3", "2、3"
                if self.options.lang == "zh":
                    listed = Text("、".join(str(layer.number) for layer in layers))
                out.append(say("closed_f_many", f=Math(function(x)), name=name, layers=listed))
        return out

    # -- one step, checks, training ----------------------------------------------------

    def update_section(self) -> Section:
        spec = self.model.spec
        run = self.run
        blocks: list[Block] = [
            Paragraph(
                (
                    say("update_intro", eta=Num(spec.training.learning_rate))
                    if not self.optimizer.settings_beyond_sgd
                    else say("update_intro_optimizer", optimizer=Text(self.optimizer.describe())),
                    say("why_old_weights_update"),
                )
            )
        ]
        # another optimiser: its rule for the output layer's weight derived in full, and that weight's first two steps
        weight = self.representative(self.net.output_layer)
        known = None if self.batch.is_batch else self.derivation(weight.name).value
        shown, self.update_values = update_blocks(self.batch, weight, None if known is None else float(known))
        blocks.extend(shown)
        if not spec.training.update_biases and any(self.net.info[p].kind == "bias" for p in self.parameters):
            blocks.append(Paragraph((say("biases_fixed"),)))
        header = (say("parameter"), say("old"), say("gradient"), say("new"))
        if len(self.parameters) <= MAX_UPDATE_ROWS:
            rows = tuple(
                (Math(self.sym(p)), Num(run.old[p]), Num(self.gradient(p, run.gradients[p])), Num(run.new[p]))
                for p in self.parameters
            )
            blocks.append(Table(header, rows, (False, True, True, True)))
        else:
            blocks.append(Paragraph((say("update_summary_intro", n=len(self.parameters)),)))
            summary = []
            for layer in self.net.layers[1:]:
                names = [p for p in self.parameters if self.net.info[p].layer == layer.index]
                grads = [abs(run.gradients[p]) for p in names]
                summary.append(
                    (
                        Count(layer.number),
                        Count(len(names)),
                        Num(max(grads)),
                        Num(math.sqrt(sum(g * g for g in grads))),
                        Count(sum(1 for g in grads if g == 0)),
                    )
                )
            blocks.append(
                Table(
                    (say("layer"), say("count"), say("max_gradient"), say("norm"), say("zeros")),
                    tuple(summary),
                    (True, True, True, True, True),
                )
            )
            top = sorted(self.parameters, key=lambda p: -abs(run.gradients[p]))[:LARGEST]
            rows = tuple((Math(self.sym(p)), Num(run.old[p]), Num(run.gradients[p]), Num(run.new[p])) for p in top)
            blocks.append(
                Table(
                    header,
                    rows,
                    (False, True, True, True),
                    say("largest_update", n=len(top)),
                )
            )
        before = self.batch.loss
        assert before is not None
        blocks.append(Paragraph((say("loss_after", after=Num(run.loss_after), before=Num(before)),)))
        note = self.published_note("E'", Math(LOSS_SYMBOL), run.loss_after, after=1)
        if note is not None:
            blocks.append(note)
        stale = self.loss_printed_with_updated_weights(run.loss_after)
        out = self.net.output_layer
        for p in self.parameters:
            n = self.published_note(p + "'", Math(self.sym(p)), run.new[p], after=1)
            if n is not None:
                hidden = self.sym(p) not in {w for row in out.weights for w in row}
                if stale and hidden and all(s.key == "published_step_agrees" for s in n.sentences):
                    # a hidden weight that agrees while E′ does not: said why, or the reader sees a contradiction
                    extra = say("published_old_weights", what=Math(self.sym(p)))
                    n = Paragraph((*n.sentences, extra), note=True)
                blocks.append(n)
        # a finite-difference check of one weight
        # E₊ and E₋ printed to 17 digits (every digit a float holds), and the quotient computed from those printed
        # decimals: a reader who redoes (E₊ − E₋)/(2h) from the page gets the digits the sentence claims (with 14
        # digits of E± the eo example claimed 11 agreeing digits, and the page gave 9)
        plus, minus = (float(f"{v:.{FD_DIGITS}g}") for v in (run.fd_plus, run.fd_minus))
        fd = float((Decimal(f"{plus:.{FD_DIGITS}g}") - Decimal(f"{minus:.{FD_DIGITS}g}")) / (2 * Decimal(str(FD_STEP))))
        exact = self.gradient(self.checked, run.gradients[self.checked])  # a saturated 1.99e-33, not the float 0
        agree = _agreeing_digits(fd, exact)
        # both sides to one digit past those that agree, so that the claim can be read off the page
        fd_digits = min(FD_DIGITS, max(self.options.digits, agree + 1))
        # a change of E below float64's resolution of E itself is invisible to (E₊ − E₋)/(2h)
        unresolved = abs(exact) * 2 * FD_STEP < abs(run.fd_plus) * 2**-52 * 4
        blocks.append(
            Paragraph(
                (
                    say(
                        "fd_unresolved" if unresolved else "fd_check",
                        weight=Math(self.sym(self.checked)),
                        h=Num(FD_STEP),
                        plus=Num(plus, FD_DIGITS),
                        minus=Num(minus, FD_DIGITS),
                        fd=Num(fd, fd_digits),
                        exact=Num(exact, fd_digits),
                        digits=agree,
                    ),
                ),
                note=True,
            )
        )
        title = say("update_step_optimizer") if self.optimizer.settings_beyond_sgd else say("update_step")
        return Section(title, tuple(blocks), key="update")

    def training_section(self) -> Section | None:
        steps = self.steps
        history = self.run.history
        if steps <= 0:
            return None
        first = history[0]
        stop = (
            next((i for i, v in enumerate(history) if abs(v) <= ROUNDING_LEVEL * abs(first)), None) if first else None
        )
        plotted = history if stop is None else history[: stop + 1]
        stride = max(1, -(-len(plotted) // MAX_PLOT_POINTS))
        picked = list(range(0, len(plotted), stride))
        if picked[-1] != len(plotted) - 1:
            picked.append(len(plotted) - 1)
        points = tuple((i, plotted[i]) for i in picked)
        positive = all(v > 0 for v in plotted)
        log = positive and max(plotted) / max(min(plotted), 1e-300) > 100
        blocks: list[Block] = [
            Paragraph((say("training_intro", steps=steps),)),
            Plot(points, log, len(plotted) - 1, say("step_axis"), say("loss_axis")),
        ]
        sentences = [say("training_result", steps=steps, loss=Num(history[-1]))]
        if stop is not None:
            sentences.append(say("rounding_stop", step=stop))
        blocks.append(Paragraph(tuple(sentences)))
        # history[steps - 1] is the loss after one update fewer: an article that counts one too many is named so
        notes = [
            self.published_note(f"E@{steps}", Math(LOSS_SYMBOL), history[-1], after=steps, one_fewer=history[steps - 1])
        ]
        if not self.batch.is_batch:
            notes += [
                self.published_note(f"{o.name}@{steps}", Math(o), v, after=steps)
                for o, v in zip(self.net.output_layer.outs, self.run.outputs[0])
            ]
        blocks.extend(n for n in notes if n is not None)
        causes = {s.key for n in notes if n is not None for s in n.sentences}
        if "published_after_one_fewer" in causes and "published_after_updated_weights" in causes:
            # the article's E is one run's, its outputs another's: say so, rather than guess at its count
            blocks.append(Paragraph((say("published_after_two_runs", steps=steps),), note=True))
        out = self.net.output_layer
        samples = self.batch.points
        assert samples is not None
        rows: list[tuple[Field, ...]] = []
        for k, (point, outputs) in enumerate(zip(samples, self.run.outputs), start=1):
            shown = display_point(self.net, point)
            for n, value in list(zip(out.neurons, outputs))[:12]:
                target = self.target(n)
                row: tuple[Field, ...] = (Math(n.out), Num(shown[n.out]), Num(value))
                if target is not None:
                    row = (*row, Num(shown[target]))
                rows.append((Count(k), *row) if self.batch.is_batch else row)
            if len(rows) >= MAX_UPDATE_ROWS:
                break
        header: tuple[Say, ...] = (say("output"), say("before_training"), say("after_training"))
        numeric: tuple[bool, ...] = (False, True, True)
        if self.uses_targets:
            header, numeric = (*header, say("target")), (*numeric, True)
        if self.batch.is_batch:
            header, numeric = (say("sample"), *header), (True, *numeric)
        blocks.append(Table(header, tuple(rows), numeric))
        return Section(say("training"), tuple(blocks), key="training")

    # -- a batch: every sample's numbers, and how they combine ------------------------

    def sample_columns(self) -> list[sp.Symbol]:
        """The symbols the table of samples shows (it must fit the page): inputs, outputs and targets, three of each
        at most, and a small network's hidden outputs."""
        net = self.net
        inputs = list(net.input_layer.outs[:3])
        hidden = [n.out for layer in net.layers[1:-1] for n in layer.neurons]
        out = net.output_layer
        outputs = [*out.outs[:3], *(t for t in (self.target(n) for n in out.neurons[:3]) if t is not None)]
        return [*inputs, *(hidden if len(inputs) + len(hidden) + len(outputs) <= 7 else []), *outputs]

    def reduction_word(self) -> Say:
        return say("batch_" + self.batch.spec.loss.reduction)

    def samples_section(self) -> Section:
        """The batch's samples side by side, the loss as their mean (or sum), and which sample is worked in full."""
        points = self.batch.points
        assert points is not None
        count = len(points)
        columns = self.sample_columns()
        rows: list[tuple[Field, ...]] = []
        for k, point in enumerate(points[:MAX_SAMPLE_ROWS], start=1):
            shown = display_point(self.net, point)
            # six digits in a row of many numbers; the worked sample's sections give every digit
            rows.append((Count(k), *(Num(shown[c], 6) for c in columns), Num(point[LOSS_SYMBOL], 6)))
        header = (say("sample"), *(say("symbol_header", symbol=Math(c)) for c in columns), say("sample_loss"))
        loss = self.batch.loss
        assert loss is not None
        blocks: list[Block] = [
            Paragraph((say("samples_intro", n=count, how=self.reduction_word()),)),
            Equations((Line(EquationChain(BATCH_LOSS, (Formula(self.batch_loss_formula(count)), Value(loss)))),)),
            Table(header, tuple(rows), (True, *(True for _ in columns), True)),
        ]
        if count > MAX_SAMPLE_ROWS:
            left = count - MAX_SAMPLE_ROWS
            blocks.append(Paragraph((say("more_samples" if left > 1 else "one_more_sample", n=left),)))
        blocks.append(Paragraph((say("samples_worked", n=self.batch.spec.worked),)))
        return Section(say("samples"), tuple(blocks), key="samples")

    def batch_loss_formula(self, count: int) -> sp.Expr:
        """(1/N)·Σ_n E^[n], or the plain sum, with E^[n] written as the lecture writes a sample's loss."""
        n = sp.Symbol("n", integer=True, positive=True)
        total = sp.Sum(SAMPLE_LOSS, (n, 1, count))
        return (
            sp.Mul(sp.Rational(1, count), total, evaluate=False) if self.batch.spec.loss.reduction == "mean" else total
        )

    def combination_section(self) -> Section:
        """Each gradient of the batch as the mean (or sum) of the samples' gradients, in a table."""
        points = self.batch.points
        assert points is not None
        count = len(points)
        shown = min(count, MAX_SAMPLE_COLUMNS)
        reduction = self.batch.spec.loss.reduction
        memo: dict[sp.Symbol, int] = {}
        gradients = [
            derive_batch(self.net, self.sym(p), points, reduction, memo) for p in self.parameters[:MAX_COMBINED_ROWS]
        ]
        rows: list[tuple[Field, ...]] = []
        for p, d in zip(self.parameters, gradients):
            values = [None if s.value is None else float(s.value) for s in d.samples]
            scale = max((abs(v) for v in values if v is not None), default=0.0)
            # a sample's gradient that is rounding noise beside the others' (an out of tanh(≈0)) is shown as 0
            shown_values = [None if v is None else (0.0 if POLICY.is_noise(v, scale) else v) for v in values]
            cells = [Num(v, 6) if v is not None else Text("?") for v in shown_values[:shown]]
            total = Num(float(d.value)) if d.value is not None else Text("?")
            rows.append((Math(self.sym(p)), *cells, total))
        header = (
            say("parameter"),
            *(say("sample_gradient", n=k) for k in range(1, shown + 1)),
            say("batch_gradient", how=self.reduction_word()),
        )
        blocks: list[Block] = [
            Paragraph((say("combination_intro", how=self.reduction_word(), n=count, k=self.batch.spec.worked),)),
            Table(header, tuple(rows), (False, *(True for _ in range(shown)), True)),
        ]
        if count > shown:
            left = count - shown
            blocks.append(Paragraph((say("more_sample_columns" if left > 1 else "one_more_sample_column", n=left),)))
        if len(self.parameters) > len(gradients):
            left = len(self.parameters) - len(gradients)
            blocks.append(Paragraph((say("more_parameters" if left > 1 else "one_more_parameter", n=left),)))
        return Section(say("combination"), tuple(blocks), key="combination")

    # -- exercises ---------------------------------------------------------------------

    def change_exercise(self, w: sp.Symbol) -> Exercise:
        """How much E changes when ``w`` grows by a little: ∂E/∂w times the change, against the true change."""
        step = 0.01
        g = self.run.gradients[w.name]
        before = self.batch.loss
        assert before is not None
        probe = self.batch.compiled()
        info = self.net.info[w.name]
        assert info.row is not None and info.col is not None
        probe.weights[info.layer][info.row, info.col] += step
        after = probe.current_loss()
        return Exercise(
            (Paragraph((say("ex_change", weight=Math(w), step=Num(step)),)),),
            (
                Paragraph(
                    (
                        say(
                            "ex_change_answer",
                            weight=Math(w),
                            step=Num(step),
                            g=Num(g),
                            estimate=Num(g * step),
                            change=Num(after - before),
                        ),
                    )
                ),
            ),
        )

    def exercises_section(self) -> Section:
        net = self.net
        out = net.output_layer
        o = out.neurons[0]
        assert o.net is not None
        w = out.weights[0][0]
        prev = net.layers[-2]
        src = prev.neurons[0].out
        items: list[Exercise] = []
        # 1. the sign of a gradient, from the signs of its factors
        if (
            o.target is not None
            and self.uses_targets
            and isinstance(out.rule, Activation)
            and net.loss_rule.name in ("half_sse", "sse", "mse")
        ):
            target = self.point[o.target]
            new_target = round(
                min(0.99, self.point[o.out] + 0.2)
                if self.point[o.out] >= target
                else max(0.01, self.point[o.out] - 0.2),
                2,
            )
            dE = sp.diff(net.loss_expression, o.out)
            local = net.dout_dnet(o.out, o.net)
            point = dict(self.exact)
            point[o.target] = new_target

            vals = [evaluate(dE, point), evaluate(local, point), point[src]]
            if all(v is not None for v in vals):
                grad = math.prod(v for v in vals if v is not None)
                items.append(
                    Exercise(
                        (
                            Paragraph(
                                (
                                    say(
                                        "ex_sign",
                                        target=Math(o.target),
                                        value=Num(new_target),
                                        quantity=Math(Partial(CHANGED_LOSS, w)),
                                    ),
                                )
                            ),
                        ),
                        (
                            Paragraph(
                                (
                                    say(
                                        "ex_sign_answer",
                                        quantity=Math(Partial(CHANGED_LOSS, w)),
                                        sign=say("negative" if grad < 0 else "positive"),
                                    ),
                                )
                            ),
                            Equations(
                                (
                                    Line(
                                        EquationChain(
                                            Partial(CHANGED_LOSS, w),
                                            (
                                                Product(
                                                    (
                                                        Partial(CHANGED_LOSS, o.out),
                                                        Partial(o.out, o.net),
                                                        Partial(o.net, w),
                                                    )
                                                ),
                                                *product(Partial(LOSS_SYMBOL, w), (), tuple(vals), grad).sides,
                                            ),
                                        )
                                    ),
                                )
                            ),
                        ),
                    )
                )
        # 2. for another optimiser, its first step, line by line; for plain gradient descent the effect of a
        # change, to first order (the update table already answers "one update by hand")
        worked = first_step(self.batch, w)
        if worked is not None:
            self.update_values.update(worked.values)
            items.append(Exercise(worked.question, worked.answer, tuple(Claim(n, v) for n, v in worked.claims)))
        else:
            items.append(self.change_exercise(w))
        # 3. another activation for the first hidden neuron (tanh, or the sigmoid where it already is tanh)
        first = net.layers[1]
        h = first.neurons[0]
        assert h.net is not None
        z = self.exact[h.net]
        if len(net.layers) > 2:
            if isinstance(first.rule, Activation) and first.rule.name == "tanh":
                s = 1 / (1 + math.exp(-z))
                question, answer, value, slope = "ex_sigmoid", "ex_sigmoid_answer", s, s * (1 - s)
            else:
                t = math.tanh(z)
                question, answer, value, slope = "ex_tanh", "ex_tanh_answer", t, 1 - t * t
            layer_words = say("the_first_hidden_layer" if len(net.layers) > 3 else "the_hidden_layer")
            items.append(
                Exercise(
                    (
                        Paragraph(
                            (say(question, out=Math(h.out), net=Math(h.net), layer=layer_words, name=Code("sigmoid")),)
                        ),
                    ),
                    (Paragraph((say(answer, net=Math(h.net), z=Num(z), out=Num(value), slope=Num(slope)),)),),
                )
            )
        # 4. a new input value
        x = net.input_layer.neurons[0].out
        w1 = net.layers[1].weights[0][0]
        new_x = round(self.point[x] * 2 + 0.1, 3)
        # only the term w·x changes
        new_net = self.exact[h.net] + self.exact[w1] * (new_x - self.exact[x])
        items.append(
            Exercise(
                (
                    Paragraph(
                        (say("ex_input", x=Math(x), value=Num(new_x), net=Math(h.net), local=Math(Partial(h.net, w1))),)
                    ),
                ),
                (
                    Paragraph(
                        (
                            say(
                                "ex_input_answer",
                                local=Math(Partial(h.net, w1)),
                                x=Math(x),
                                value=Num(new_x),
                                net=Math(h.net),
                                new=Num(new_net),
                            ),
                        )
                    ),
                ),
            )
        )
        return Section(
            say("exercises"),
            (Exercises(tuple(items), say("exercises_intro")),),
            key="exercises",
            numbered=False,
            new_page=True,
        )


# -- small helpers ----------------------------------------------------------------------


def _label_position(y_src: float, y_dst: float) -> float:
    if abs(y_src - y_dst) < 1e-9:
        return 0.5
    return 0.25 if y_dst < y_src else 0.75


def _term_count(expr: sp.Expr) -> int:
    """How many terms a loss adds up (a constant factor such as ½ or 1/n outside the sum set aside)."""
    _, rest = expr.as_coeff_Mul()
    return len(sp.Add.make_args(rest)) if rest != 0 else 0


def _agreeing_digits(a: float, b: float) -> int:
    """How many leading significant digits ``a`` and ``b`` share, written out to 17 digits: 0.91235 and 0.91244
    share 3 (the digits of their relative difference, 9.9e-5, would say 4: one too many for a leading 9).

    Across a carry (0.19999999999 against 0.20000000001 share no digit) the count is one less than the digits
    of their relative difference: the numbers still agree to within a unit of that place.
    """
    if a == b:
        return 17
    if b == 0 or a == 0 or (a < 0) != (b < 0):
        return 0
    first, second = (f"{abs(v):.16e}" for v in (a, b))
    (mantissa_a, exponent_a), (mantissa_b, exponent_b) = first.split("e"), second.split("e")
    shared = 0
    if exponent_a == exponent_b:
        for x, y in zip(mantissa_a.replace(".", ""), mantissa_b.replace(".", ""), strict=True):
            if x != y:
                break
            shared += 1
    return max(shared, int(-math.log10(abs(a - b) / abs(b))) - 1)
