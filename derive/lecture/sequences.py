"""The recurrent lecture: backpropagation through time, worked with numbers, as a :class:`LecturePlan`.

A network with an rnn layer (h_t = f(W x_t + U h_{t−1} + b), h_0 = 0, a dense layer reading the last state)
gets its own lecture, in the order a student meets the ideas: the recurrence and its names, the forward pass
step by step, the loss, the network unrolled in time (one recurrent weight's uses highlighted), the δs
backwards through time, the gradient of that weight as a sum over steps, an input weight and a bias likewise,
the size of δ_t at every step (vanishing and exploding gradients, against the same network with U scaled up),
the update, and exercises. Every number comes from the core: states and δs from the exact pass, each step's
contribution from the derivation's δ terms, the update and the scaled network from the compiled float engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from ..core.chain import DeltaTerm, Derivation, derive
from ..core.layers import Recurrent
from ..core.network import LOSS_SYMBOL, Layer, Network
from ..core.rules import Activation
from ..present.display import display_point
from ..present.equations import (
    Contribution,
    EquationChain,
    Formula,
    Numbers,
    Partial,
    Product,
    Side,
    Value,
    definition,
    total,
)
from ..present.numbers import DEFAULT_DIGITS, format_number
from ..spec.naming import delta_name
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
    Node,
    Num,
    Paragraph,
    Say,
    Section,
    Table,
    say,
)

if TYPE_CHECKING:
    from ..core.worked import Worked
    from .plan import Options

STEP_WIDTH = 3.3  # cm between time steps in the unrolled drawing (13.2 cm for 4 steps and the output)
UNIT_RISE = 1.8  # cm between a step's units, which also move right by UNIT_SHIFT (no edge grazes a node)
UNIT_SHIFT = 0.9
OUTPUT_GAP = 2.0  # cm from the last step's last unit to the output
NODE_ROOM = 1.9  # cm beside a step's last unit before the next step's first
INPUT_DROP = 2.5  # cm from the lowest unit down to the inputs
INPUT_GAP = 1.2
MAX_DRAWN_UNITS = 3  # a wider layer is drawn as units 1, 2, …, H (and the chosen weight's)
MAX_DRAWN_FEATURES = 3
DRAWING_WIDTH = 14.0  # cm for the steps (a longer sequence is drawn as steps 1, 2, …, T); the output after them
SCALES = (2.0, 3.0, 4.0, 6.0)  # U multiplied by the first of these that makes δ grow back in time
SHOWN_SCALE = 4.0  # the comparison's scale when none makes δ grow (the units saturate)
BATCH_LOSS = sp.Symbol("E")  # a batch's loss, apart from the worked sample's E^[n]
SAMPLE_LOSS = sp.Symbol("E^{[n]}", real=True)  # sample n's own loss, in the batch's formula
MAX_SAMPLE_COLUMNS = 4
HIGHLIGHT = 0
MAX_TABLE_COLUMNS = (
    7  # numbers beside the step: more do not fit the page's width  # the colour of the chosen recurrent weight's edges
)


def has_rnn(network: Network) -> bool:
    """Whether the network has a recurrent layer (its lecture is this module's)."""
    return any(layer.spec.kind == Recurrent.name for layer in network.layers[1:])


def build_recurrent_plan(model: Worked, options: Options) -> LecturePlan:
    """The recurrent lecture for ``model`` (one sample with numbers)."""
    return _Recurrent(model, options).plan()


def recurrent_sketch(model: Worked) -> Diagram:
    """The unrolled network with names and no numbers (an exercise sheet shows it)."""
    return _Recurrent(model, None).unrolled(small=True)


def recurrent_diagram(model: Worked) -> Diagram:
    """The unrolled network with its numbers' names and the chosen recurrent weight's uses highlighted."""
    return _Recurrent(model, None).unrolled()


def recurrent_exercises(model: Worked, digits: int = DEFAULT_DIGITS) -> tuple[Exercise, ...]:
    """The recurrent exercises with worked answers and the claims ``derive check`` grades."""
    return _Recurrent(model, None, digits).exercises()


def sheet_intro(model: Worked) -> Say:
    """An exercise sheet's first sentence for a recurrent network."""
    r = _Recurrent(model, None)
    return say("rnn_sheet_intro", steps=r.steps, features=r.features, units=r.units, outputs=r.net.output_layer.size)


@dataclass(frozen=True)
class _Chosen:
    """The parameters worked in full: a recurrent weight u_jk, an input weight w_jd and unit j's bias."""

    u: sp.Symbol
    w: sp.Symbol
    b: sp.Symbol | None
    unit: int  # j, from 0
    source: int  # k: the previous state's unit u reads, from 0
    feature: int  # d, from 0


class _Recurrent:
    def __init__(self, model: Worked, options: Options | None, digits: int | None = None) -> None:
        what = "derive lecture" if options is not None else "derive exercises"
        model.network.require_numbers(what)
        # a batch's lecture works one sequence in full (Spec.worked), as a dense lecture does; the update and the
        # combined gradients are the batch's
        self.batch = model
        self.worked: int | None = model.spec.worked if model.is_batch else None
        if model.is_batch:
            assert model.points is not None  # checks every sample's forward pass
            model = model.sample(model.spec.worked)
        assert model.point is not None
        self.model = model
        self.options = options
        self.lang = options.lang if options is not None else "en"
        self.digits = digits if digits is not None else (options.digits if options is not None else DEFAULT_DIGITS)
        self.net: Network = model.network
        self.exact = model.point
        self.point = display_point(self.net, model.point)
        index = next(i for i, layer in enumerate(self.net.layers) if i > 0 and isinstance(layer.kind, Recurrent))
        self.layer: Layer = self.net.layers[index]
        self.index = index
        kind = self.layer.kind
        assert isinstance(kind, Recurrent)
        self.steps, self.units, self.features = kind.sizes(self.layer.spec)
        self.number = self.layer.number
        self.derivations: dict[sp.Symbol, Derivation] = {}
        self.chosen = self.choose()
        # the batch's E, apart from the worked sequence's own E^[n] (the sample network's spelling of E)
        self.batch_loss = BATCH_LOSS if self.worked is not None else LOSS_SYMBOL

    # -- helpers ------------------------------------------------------------------

    def at(self, t: int, j: int) -> int:
        """The neuron of unit j at step t (both from 0)."""
        return t * self.units + j

    def state(self, t: int, j: int) -> sp.Symbol:
        return self.layer.outs[self.at(t, j)]

    def net_of(self, t: int, j: int) -> sp.Symbol:
        return self.layer.nets[self.at(t, j)]

    def delta(self, t: int, j: int) -> sp.Symbol:
        d = self.layer.deltas[self.at(t, j)]
        assert d is not None
        return d

    def x(self, t: int, k: int) -> sp.Symbol:
        return self.net.input_layer.outs[t * self.features + k]

    def claim(self, name: str) -> str:
        """A claim's name for ``derive check``: a sample's own quantity carries [n] in a batch (a2_1_t2[2])."""
        return name if self.worked is None else f"{name}[{self.worked}]"

    def gradient_claim(self, q: sp.Symbol) -> str:
        """∂E/∂q of the worked sequence: dE/dq, or in a batch the sample's own dE[n]/dq."""
        return f"dE/d{q.name}" if self.worked is None else f"dE[{self.worked}]/d{q.name}"

    def value(self, symbol: sp.Symbol) -> float:
        return float(self.point[symbol])

    def derivation(self, q: sp.Symbol) -> Derivation:
        if q not in self.derivations:
            self.derivations[q] = derive(self.net, q, self.exact)
        return self.derivations[q]

    def gradient(self, q: sp.Symbol) -> float:
        value = self.derivation(q).value
        assert value is not None
        return float(value)

    def norms(self) -> list[float]:
        """‖δ_t‖ for t = 1 … T: the length of the layer's δ vector at each step (from the exact pass)."""
        return [math.sqrt(sum(self.value(self.delta(t, j)) ** 2 for j in range(self.units))) for t in range(self.steps)]

    def choose(self) -> _Chosen:
        """u_11 (unit 1 fed its own previous state) unless its gradient is 0; w_11; unit 1's bias."""
        weights = self.layer.weights
        f = self.features
        candidates = [(j, k) for j in range(self.units) for k in range(self.units)]
        candidates.sort(key=lambda jk: (jk[0] != jk[1], jk))  # the diagonal first: a unit's own memory
        unit, source = next(
            ((j, k) for j, k in candidates if self.gradient(weights[j][f + k]) != 0),
            candidates[0],
        )
        bias = self.layer.biases[self.at(0, unit)]
        return _Chosen(weights[unit][f + source], weights[unit][0], bias, unit, source, 0)

    def activation_name(self) -> str:
        return self.layer.spec.activation

    # -- the plan -------------------------------------------------------------------

    def plan(self) -> LecturePlan:
        assert self.options is not None
        spec = self.batch.spec
        lang = self.lang
        title = spec.title_zh if lang == "zh" and spec.title_zh else spec.title
        description = spec.description_zh if lang == "zh" and spec.description_zh else spec.description
        sections = [
            self.network_section(),
            *([self.samples_section()] if self.worked is not None else []),
            self.forward_section(),
            self.loss_section(),
            self.unrolled_section(),
            self.deltas_section(),
            self.recurrent_section(),
            self.input_section(),
            self.vanishing_section(),
            *([self.combination_section()] if self.worked is not None else []),
            self.update_section(),
        ]
        if self.options.exercises:
            sections.append(
                Section(
                    say("exercises"),
                    (Exercises(self.exercises(), say("exercises_intro")),),
                    key="exercises",
                    new_page=True,
                )
            )
        source = spec.display_source
        if source.endswith(BUILTIN_SUFFIX):
            from .latex import words

            source = source[: -len(BUILTIN_SUFFIX)] + words(lang)["builtin_example"]
        return LecturePlan(
            lang=lang,
            title=title,
            description=description,
            source=source,
            sections=tuple(sections),
            network=self.net,
            point=self.point,
            digits=self.digits,
        )

    # -- 1. the network -------------------------------------------------------------

    def network_section(self) -> Section:
        c = self.chosen
        out = self.net.output_layer
        rule = self.layer.rule
        intro = [
            say(
                "rnn_intro",
                steps=self.steps,
                features=self.features,
                units=self.units,
                outputs=out.size,
            ),
            say("rnn_recurrence"),
            say(
                "rnn_names",
                x=Math(self.x(2 if self.steps > 2 else 0, 0)),
                a=Math(self.state(2 if self.steps > 2 else 0, 0)),
                z=Math(self.net_of(2 if self.steps > 2 else 0, 0)),
                t=3 if self.steps > 2 else 1,
            ),
            say(
                "rnn_weight_names",
                w=Math(c.w),
                u=Math(c.u),
                j=c.unit + 1,
                k=c.source + 1,
                d=c.feature + 1,
            ),
        ]
        blocks: list[Block] = [Paragraph(tuple(intro))]
        rows: list[tuple[Field, ...]] = []
        for j, row in enumerate(self.layer.weights):
            for k in range(self.features):
                rows.append((Math(row[k]), say("rnn_w_meaning", j=j + 1, k=k + 1), Num(self.value(row[k]))))
        for j, row in enumerate(self.layer.weights):
            for k in range(self.units):
                u = row[self.features + k]
                rows.append((Math(u), say("rnn_u_meaning", j=j + 1, k=k + 1), Num(self.value(u))))
        seen: set[sp.Symbol] = set()
        for n in range(self.units):
            b = self.layer.biases[n]
            if b is not None and b not in seen:
                seen.add(b)
                rows.append((Math(b), say("rnn_b_meaning", j=n + 1), Num(self.value(b))))
        for j, row in enumerate(out.weights):
            for k, w in enumerate(row):
                rows.append(
                    (
                        Math(w),
                        say("rnn_out_w_meaning", k=k + 1, o=j + 1),
                        Num(self.value(w)),
                    )
                )
        for b in dict.fromkeys(b for b in out.biases if b is not None):
            rows.append((Math(b), say("rnn_out_b_meaning"), Num(self.value(b))))
        for neuron in out.neurons:
            if neuron.target is not None:
                rows.append(
                    (Math(neuron.target), say("target_of", neuron=Math(neuron.out)), Num(self.value(neuron.target)))
                )
        blocks.append(
            Table(
                (say("symbol"), say("meaning"), say("value")),
                tuple(rows),
                (False, False, True),
                caption=say("rnn_parameters_follow"),
            )
        )
        # unit 1 at the first step and at a later one: the recurrent term appears from step 2 on
        lines = []
        for t in range(min(2, self.steps)):  # each net, then the output the activation makes of it
            z, a = self.net_of(t, 0), self.state(t, 0)
            lines.append(Line(EquationChain(z, (Formula(self.net.net_definitions[z]),))))
            lines.append(Line(EquationChain(a, (Formula(self.net.out_definitions[a]),))))
        blocks.append(Equations(tuple(lines), caption=say("rnn_equations_follow")))
        if isinstance(rule, Activation):
            blocks += self.activation_blocks(rule)
        o = out.neurons[0]
        assert o.net is not None
        out_lines = [Line(EquationChain(o.net, (Formula(self.net.net_definitions[o.net]),)))]
        blocks.append(Paragraph((say("rnn_output", last=self.steps, layer=out.number),)))
        blocks.append(Equations(tuple(out_lines)))
        return Section(say("network"), tuple(blocks), key="network")

    def activation_blocks(self, rule: Activation) -> list[Block]:
        """f and f′, f′ also written in the unit's output when it can be (the backward pass reuses the states)."""
        from ..core.rules import X, Y
        from ..present.branches import piecewise_form

        f, fprime = sp.Symbol("f(x)", real=True), sp.Symbol("f'(x)", real=True)
        derivative: list[Side] = [Formula(piecewise_form(rule.fprime, X))]
        in_out = rule.fprime_in_out is not None and bool(rule.fprime_in_out.free_symbols)
        if in_out:
            assert rule.fprime_in_out is not None
            derivative.append(Formula(rule.fprime_in_out.xreplace({Y: f})))
        blocks: list[Block] = [
            Paragraph((say("rnn_activation", name=Code(self.activation_name())),)),
            Equations(
                (
                    Line(EquationChain(f, (Formula(piecewise_form(rule.f, X)),))),
                    Line(EquationChain(fprime, tuple(derivative))),
                )
            ),
        ]
        if in_out:
            blocks.append(Paragraph((say("rnn_why_in_out"),), note=True))
        return blocks

    # -- 2. forward ------------------------------------------------------------------

    def forward_section(self) -> Section:
        blocks: list[Block] = [Paragraph((say("rnn_forward_intro"),))]
        lines: list[Line] = []
        for t in range(min(2, self.steps)):
            for j in range(self.units):
                z, a = self.net_of(t, j), self.state(t, j)
                lines.append(Line(definition(z, self.net.net_definitions[z], self.value(z))))
                lines.append(Line(definition(a, self.net.out_definitions[a], self.value(a))))
        blocks.append(Equations(tuple(lines), caption=say("rnn_forward_first")))
        inputs = [say("rnn_col_x", k=k + 1) for k in range(self.features)]
        nets = [say("rnn_col_z", layer=self.number, j=j + 1) for j in range(self.units)]
        states = [say("rnn_col_a", layer=self.number, j=j + 1) for j in range(self.units)]

        def column(t: int, which: str) -> list[Field]:
            if which == "x":
                return [Num(self.value(self.x(t, k))) for k in range(self.features)]
            if which == "z":
                return [Num(self.value(self.net_of(t, j))) for j in range(self.units)]
            return [Num(self.value(self.state(t, j))) for j in range(self.units)]

        # one table (inputs, nets, outputs) when it fits the page's width; else nets and outputs apart
        tables = [("x", "z", "a")] if len(inputs) + 2 * self.units <= MAX_TABLE_COLUMNS else [("x", "z"), ("a",)]
        for parts in tables:
            header: list[Say] = [say("rnn_col_step")]
            for part in parts:
                header += {"x": inputs, "z": nets, "a": states}[part]
            rows = tuple((Count(t + 1), *(f for part in parts for f in column(t, part))) for t in range(self.steps))
            caption = say("rnn_forward_table") if parts[0] == "x" else say("rnn_forward_table_outputs")
            blocks.append(Table(tuple(header), rows, (True,) * len(header), caption=caption))
        out = self.net.output_layer
        out_lines: list[Line] = []
        for n in out.neurons:
            assert n.net is not None
            out_lines.append(Line(definition(n.net, self.net.net_definitions[n.net], self.value(n.net))))
            out_lines.append(Line(definition(n.out, self.net.out_definitions[n.out], self.value(n.out))))
        blocks.append(Equations(tuple(out_lines), caption=say("rnn_forward_output", last=self.steps)))
        return Section(say("forward"), tuple(blocks), key="forward")

    # -- 3. loss ---------------------------------------------------------------------

    def loss_section(self) -> Section:
        name = self.net.loss_rule.name
        key = f"loss_{name}"
        from .latex import words

        kind: Field = say(key) if key in words(self.lang) else Code(name)
        line = Line(definition(LOSS_SYMBOL, self.net.loss_expression, self.value(LOSS_SYMBOL)))
        return Section(
            say("loss"),
            (Paragraph((say("loss_intro", name=kind),)), Equations((line,))),
            key="loss",
        )

    # -- 4. the unrolled graph -----------------------------------------------------------

    def column_width(self) -> float:
        """cm a step needs: its units step right by UNIT_SHIFT each, so no input edge grazes a lower unit."""
        return UNIT_SHIFT * (len(self.drawn_units()) - 1) + NODE_ROOM

    def drawn_steps(self) -> list[int | None]:
        """The steps drawn, from 0, with None for the gap of a long sequence: 1, 2, …, T."""
        if self.steps * self.column_width() <= DRAWING_WIDTH or self.steps <= 4:  # leave out two steps or none
            return list(range(self.steps))
        return [0, 1, None, self.steps - 1]

    def drawn_units(self) -> list[int | None]:
        """The units drawn in each step, from 0, with None where more are left out (the chosen weight's kept)."""
        if self.units <= MAX_DRAWN_UNITS:
            return list(range(self.units))
        keep = sorted({0, self.chosen.unit, self.chosen.source, self.units - 1})
        out: list[int | None] = []
        for j in keep:
            if out and out[-1] is not None and j > out[-1] + 1:
                out.append(None)
            out.append(j)
        return out

    def drawn_features(self) -> list[int | None]:
        if self.features <= MAX_DRAWN_FEATURES:
            return list(range(self.features))
        return [0, None, self.features - 1]

    def unrolled(self, small: bool = False) -> Diagram:
        """x_t below, the units of each step above them, left to right in time, the output after the last step;
        every edge that multiplies by the chosen recurrent weight u (step t − 1's unit k into step t's unit j)
        in the highlight colour. A long sequence, a wide layer or many features are drawn in part (dots)."""
        c = self.chosen
        steps, units, features = self.drawn_steps(), self.drawn_units(), self.drawn_features()
        drawn = sum(t is not None for t in steps)
        width = max(min(STEP_WIDTH, DRAWING_WIDTH / drawn), self.column_width())
        gap = 1.2  # cm for the dots of the steps left out
        scale = 0.7 if small else 1.0
        top = UNIT_RISE * (len(units) - 1) / 2
        low = top - UNIT_RISE * (len(units) - 1)
        nodes: list[Node] = []
        edges: list[Edge] = []
        dots: list[tuple[float, float]] = []

        def unit_at(slot: int, cx: float) -> tuple[float, float]:
            return (cx + UNIT_SHIFT * slot) * scale, (top - UNIT_RISE * slot) * scale

        spacing = min(INPUT_GAP, (width - NODE_ROOM + 0.7) / max(len(features) - 1, 1))

        def input_at(slot: int, cx: float) -> tuple[float, float]:
            offset = -0.7 + spacing * slot if len(features) > 1 else 0.0
            return (cx + offset) * scale, (low - INPUT_DROP) * scale

        cx = -width
        for column, t in enumerate(steps):
            if t is None:  # the steps left out: dots between the steps either side
                middle = cx + width / 2 + gap / 2
                dots += [(middle * scale, y * scale) for y in (top, low - INPUT_DROP)]
                cx += gap
                continue
            cx += width
            for slot, j in enumerate(units):
                if j is None:
                    dots.append(unit_at(slot, cx))
                    continue
                x, y = unit_at(slot, cx)
                tag = f"a{j + 1},t{t + 1}" if small else None
                nodes.append(Node(f"h{t}x{j}", x, y, self.state(t, j), "hidden", tag=tag))
            for slot, k in enumerate(features):
                x, y = input_at(slot, cx)
                if k is None:
                    dots.append((x, y))
                    continue
                tag = f"x{k + 1},t{t + 1}" if small else None
                nodes.append(Node(f"x{t}x{k}", x, y, self.x(t, k), "input", tag=tag))
                for j in units:
                    if j is not None:
                        edges.append(Edge(f"x{t}x{k}", f"h{t}x{j}"))
            before = steps[column - 1] if column > 0 else None
            if before is None or before != t - 1:
                continue
            for j in units:
                for k in units:
                    if j is None or k is None:
                        continue
                    hot = j == c.unit and k == c.source
                    edges.append(
                        Edge(
                            f"h{t - 1}x{k}",
                            f"h{t}x{j}",
                            c.u if hot and not small else None,
                            None,
                            colour=HIGHLIGHT if hot and not small else None,
                        )
                    )
        out = self.net.output_layer
        ox = (cx + UNIT_SHIFT * (len(units) - 1) + OUTPUT_GAP) * scale
        last = self.steps - 1
        for o, n in enumerate(out.neurons[:MAX_DRAWN_UNITS]):
            y = 1.4 * ((min(out.size, MAX_DRAWN_UNITS) - 1) / 2 - o) * scale
            nodes.append(Node(f"o{o}", ox, y, n.out, "output"))
            for j in units:
                if j is not None:
                    edges.append(Edge(f"h{last}x{j}", f"o{o}"))
        return Diagram(tuple(nodes), tuple(edges), tuple(dots), small=small)

    def unrolled_section(self) -> Section:
        c = self.chosen
        words = [say("rnn_unrolled_intro", steps=self.steps)]
        if self.steps > 1:
            words += [
                say(
                    "rnn_unrolled_highlight",
                    u=Math(c.u),
                    n=self.steps - 1,
                    first=Math(self.state(0, c.source)),
                    into=Math(self.state(1, c.unit)),
                ),
                say("rnn_unrolled_why", u=Math(c.u)),
            ]
        if None in self.drawn_steps():
            words.append(say("rnn_unrolled_steps_left_out", first=3, last=self.steps - 1))
        if None in self.drawn_units() or None in self.drawn_features():
            words.append(say("rnn_unrolled_units_left_out"))
        return Section(say("rnn_unrolled"), (Paragraph(tuple(words)), self.unrolled()), key="unrolled")

    # -- 5. the δs through time -----------------------------------------------------------

    def deltas_section(self) -> Section:
        T = self.steps
        out = self.net.output_layer
        blocks: list[Block] = [
            Paragraph(
                (
                    say(
                        "rnn_delta_def",
                        delta=Math(self.delta(T - 1, 0)),
                        partial=Math(Partial(LOSS_SYMBOL, self.net_of(T - 1, 0))),
                    ),
                    say("rnn_delta_two_ways", last=T),
                )
            ),
            Paragraph((say("rnn_delta_rule"),)),
        ]
        lines: list[Line] = []
        for n in out.neurons:
            assert n.delta is not None
            lines.append(Line(definition(n.delta, self.net.delta_definitions[n.delta], self.value(n.delta))))
        for j in range(self.units):
            d = self.delta(T - 1, j)
            lines.append(Line(definition(d, self.net.delta_definitions[d], self.value(d))))
        blocks.append(Equations(tuple(lines), caption=say("rnn_delta_last", last=T)))
        if T > 1:
            earlier = [
                Line(
                    definition(
                        self.delta(T - 2, j),
                        self.net.delta_definitions[self.delta(T - 2, j)],
                        self.value(self.delta(T - 2, j)),
                    )
                )
                for j in range(self.units)
            ]
            blocks.append(Equations(tuple(earlier), caption=say("rnn_delta_earlier", t=T - 1, next=T)))
        header: list[Say] = [say("rnn_col_step")]
        header += [say("rnn_col_delta", layer=self.number, j=j + 1) for j in range(self.units)]
        header.append(say("rnn_col_norm"))
        norms = self.norms()
        rows: tuple[tuple[Field, ...], ...] = tuple(
            (
                Count(t + 1),
                *(Num(self.value(self.delta(t, j))) for j in range(self.units)),
                Num(norms[t]),
            )
            for t in reversed(range(T))
        )
        blocks.append(Table(tuple(header), rows, (True,) * len(header), caption=say("rnn_delta_table")))
        return Section(say("rnn_deltas"), tuple(blocks), key="deltas")

    def delta_line(self, d: sp.Symbol) -> Line:
        return Line(definition(d, self.net.delta_definitions[d], self.value(d)))

    # -- 6. the recurrent weight: a sum over steps -----------------------------------------

    def terms(self, q: sp.Symbol) -> list[tuple[int, DeltaTerm]]:
        """The uses of ``q`` in the rnn layer, with their step (from 0), in time order."""
        found = []
        for term in self.derivation(q).terms:
            row = self.layer.neurons.index(term.neuron) if term.neuron in self.layer.neurons else None
            if row is not None:
                found.append((row // self.units, term))
        return sorted(found, key=lambda pair: pair[0])

    def sum_lines(self, q: sp.Symbol) -> list[Line]:
        """Each step's contribution δ · (what q multiplies), symbols then numbers, then the total."""
        lines: list[Line] = []
        values: list[float | None] = []
        for t, term in self.terms(q):
            local = term.local.expr
            net = term.neuron.net or self.net_of(t, self.chosen.unit)
            lhs = Contribution(LOSS_SYMBOL, q, (net,))
            value = term.value
            assert value is not None and term.delta_value is not None
            sides: tuple[Side, ...]
            if local == 1:
                sides = (Product((term.delta,)), Value(float(value)))
            else:
                assert isinstance(local, sp.Symbol)
                sides = (
                    Product((term.delta, local)),
                    Numbers((float(term.delta_value), self.value(local)), "*"),
                    Value(float(value)),
                )
            lines.append(Line(EquationChain(lhs, sides), colour=HIGHLIGHT if q == self.chosen.u else None))
            values.append(float(value))
        lines.append(Line(total(Partial(LOSS_SYMBOL, q), tuple(values), self.gradient(q))))
        return lines

    def recurrent_section(self) -> Section:
        c = self.chosen
        T = self.steps
        blocks: list[Block] = [
            Paragraph(
                (
                    say(
                        "rnn_u_uses",
                        u=Math(c.u),
                        j=c.unit + 1,
                        k=c.source + 1,
                        steps=T,
                        uses=T - 1,
                    ),
                    say(
                        "rnn_u_term",
                        u=Math(c.u),
                        example=Math(Contribution(LOSS_SYMBOL, c.u, (self.net_of(1, c.unit),))) if T > 1 else Math(c.u),
                        t=2,
                        k=c.source + 1,
                        partial=Math(Partial(LOSS_SYMBOL, c.u)),
                    ),
                )
            ),
            Equations(tuple(self.sum_lines(c.u)), caption=say("rnn_u_sum", u=Math(c.u))),
        ]
        terms = self.terms(c.u)
        if terms:
            biggest = max(terms, key=lambda pair: abs(float(pair[1].value or 0)))
            # the last step's part is the largest when the δs shrink going back: say why only then
            key = "rnn_u_largest" if biggest[0] == T - 1 else "rnn_u_largest_earlier"
            blocks.append(Paragraph((say(key, t=biggest[0] + 1, last=T),), note=True))
        return Section(say("rnn_u_title", u=Math(c.u)), tuple(blocks), key="recurrent")

    def input_section(self) -> Section:
        c = self.chosen
        T = self.steps
        blocks: list[Block] = [
            Paragraph((say("rnn_w_uses", w=Math(c.w), j=c.unit + 1, d=c.feature + 1, steps=T),)),
            Equations(tuple(self.sum_lines(c.w))),
        ]
        if c.b is not None:
            blocks.append(Paragraph((say("rnn_b_uses", b=Math(c.b), j=c.unit + 1, steps=T),)))
            blocks.append(Equations(tuple(self.sum_lines(c.b))))
        return Section(say("rnn_input_title"), tuple(blocks), key="input")

    # -- 7. vanishing and exploding -------------------------------------------------------

    def scaled_norms(self, scale: float) -> list[float] | None:
        """‖δ_t‖ of the same network with U multiplied by ``scale``, from the compiled float engine."""
        import numpy as np

        engine = self.model.compiled()
        weights = list(engine.weights)
        changed = np.array(weights[self.index], dtype=float, copy=True)
        changed[:, self.features :] *= scale
        weights[self.index] = changed
        engine.weights = weights
        trace = engine.trace()
        deltas = np.asarray(trace.deltas[self.index], dtype=float).reshape(-1)[: self.steps * self.units]
        if not np.all(np.isfinite(deltas)):
            return None
        rows = deltas.reshape(self.steps, self.units)
        return [float(np.sqrt(np.sum(r * r))) for r in rows]

    def comparison(self) -> tuple[float, list[float]] | None:
        """The scale of U that shows δ growing back in time (or SHOWN_SCALE), with its ‖δ_t‖."""
        if self.steps < 2:
            return None
        shown: tuple[float, list[float]] | None = None
        for scale in SCALES:
            norms = self.scaled_norms(scale)
            if norms is None:
                continue
            if scale == SHOWN_SCALE:
                shown = (scale, norms)
            if norms[-1] > 0 and norms[0] > norms[-1]:
                return scale, norms
        return shown

    def vanishing_section(self) -> Section:
        T = self.steps
        norms = self.norms()
        blocks: list[Block] = [Paragraph((say("rnn_size_intro"),))]
        compared = self.comparison()
        header: list[Say] = [say("rnn_col_step"), say("rnn_col_norm"), say("rnn_col_ratio")]
        if compared is not None:
            header += [say("rnn_col_scaled_norm", scale=Num(compared[0], 2)), say("rnn_col_ratio")]
        rows: list[tuple[Field, ...]] = []
        for t in reversed(range(T)):
            row: list[Field] = [Count(t + 1), Num(norms[t]), Num(norms[t] / norms[-1], 4) if norms[-1] else Code("—")]
            if compared is not None:
                other = compared[1]
                row += [Num(other[t]), Num(other[t] / other[-1], 4) if other[-1] else Code("—")]
            rows.append(tuple(row))
        blocks.append(Table(tuple(header), tuple(rows), (True,) * len(header), caption=say("rnn_size_table")))
        slope = (
            say("rnn_slope_tanh")
            if self.activation_name() == "tanh"
            else (say("rnn_slope_sigmoid") if self.activation_name() == "sigmoid" else say("rnn_slope_other"))
        )
        why = [say("rnn_why_product", last=T, n=max(T - 1, 1)), slope, say("rnn_why_vanish"), say("rnn_why_explode")]
        blocks.append(Paragraph(tuple(why), note=True))
        if T > 1 and norms[-1] > 0:
            here = norms[0] / norms[-1]
            sentences = [say("rnn_here", ratio=Num(here, 3), last=T)]
            if compared is not None and compared[1][-1] > 0:
                there = compared[1][0] / compared[1][-1]
                key = "rnn_scaled_grows" if there > 1 else "rnn_scaled_shrinks"
                sentences.append(say(key, scale=Num(compared[0], 2), ratio=Num(there, 3), last=T))
            blocks.append(Paragraph(tuple(sentences)))
        return Section(say("rnn_size_title"), tuple(blocks), key="vanishing")

    # -- a batch: its samples, and their gradients combined --------------------------------

    def how(self) -> Say:
        return say("batch_" + self.batch.spec.loss.reduction)

    def samples_section(self) -> Section:
        """The batch's loss as the mean (or sum) of the sequences' losses, and which sequence is worked."""
        points = self.batch.points
        loss = self.batch.loss
        assert points is not None and loss is not None and self.worked is not None
        count = len(points)
        n = sp.Symbol("n", integer=True, positive=True)
        total: sp.Expr = sp.Sum(SAMPLE_LOSS, (n, 1, count))
        if self.batch.spec.loss.reduction == "mean":
            total = sp.Mul(sp.Rational(1, count), total, evaluate=False)
        rows = tuple((Count(k), Num(float(point[LOSS_SYMBOL]), 6)) for k, point in enumerate(points, start=1))
        blocks: list[Block] = [
            Paragraph((say("samples_intro", n=count, how=self.how()),)),
            Equations((Line(EquationChain(BATCH_LOSS, (Formula(total), Value(float(loss))))),)),
            Table((say("sample"), say("sample_loss")), rows, (True, True)),
            Paragraph((say("samples_worked", n=self.worked),)),
        ]
        return Section(say("samples"), tuple(blocks), key="samples")

    def combination_section(self) -> Section:
        """The worked parameters' gradients for every sequence, and the batch's: their mean (or sum)."""
        from ..core.chain import derive_batch

        points = self.batch.points
        assert points is not None and self.worked is not None
        count = len(points)
        shown = min(count, MAX_SAMPLE_COLUMNS)
        c = self.chosen
        rows: list[tuple[Field, ...]] = []
        for q in (c.u, c.w, *([c.b] if c.b is not None else [])):
            d = derive_batch(self.net, q, points, self.batch.spec.loss.reduction)
            values = [float(s.value) if s.value is not None else math.nan for s in d.samples]
            assert d.value is not None
            rows.append((Math(q), *(Num(v, 6) for v in values[:shown]), Num(float(d.value))))
        header = (
            say("parameter"),
            *(say("sample_gradient", n=k) for k in range(1, shown + 1)),
            say("batch_gradient", how=self.how()),
        )
        blocks: list[Block] = [
            Paragraph((say("combination_intro", how=self.how(), n=count, k=self.worked),)),
            Table(header, tuple(rows), (False, *(True for _ in range(shown)), True)),
        ]
        if count > shown:
            left = count - shown
            blocks.append(Paragraph((say("more_sample_columns" if left > 1 else "one_more_sample_column", n=left),)))
        return Section(say("combination"), tuple(blocks), key="combination")

    # -- 8. the update ------------------------------------------------------------------

    def update_section(self) -> Section:
        engine = self.batch.compiled()  # a batch moves by the batch's gradient
        old = engine.parameter_values()
        _, gradients = engine.named_gradients()
        engine.train(1)
        new = engine.parameter_values()
        rate = self.batch.spec.training.learning_rate
        c = self.chosen
        blocks: list[Block] = [
            Paragraph((say("update_intro", eta=Num(rate)), say("why_old_weights_update"))),
            Paragraph((self.update_sentence(c.u, old[c.u.name], gradients[c.u.name], new[c.u.name]),)),
        ]
        names = list(self.batch.spec.parameter_names)
        rows = tuple((Math(self.net.symbols[p]), Num(old[p]), Num(gradients[p]), Num(new[p])) for p in names)
        blocks.append(
            Table((say("parameter"), say("old"), say("gradient"), say("new")), rows, (False, True, True, True))
        )
        return Section(say("update_step"), tuple(blocks), key="update")

    def update_sentence(self, q: sp.Symbol, old: float, g: float, new: float) -> Say:
        return say(
            "sheet_update_answer",
            weight=Math(q),
            partial=Math(Partial(self.batch_loss, q)),
            old=Num(old),
            eta=Num(self.batch.spec.training.learning_rate),
            g=Num(g),
            new=Num(new),
        )

    # -- 9. exercises --------------------------------------------------------------------

    def answer(
        self, claims: list[tuple[str, float]], blocks: list[Block]
    ) -> tuple[tuple[Block, ...], tuple[Claim, ...]]:
        hand_in = ", ".join(f"{name} = {format_number(value, self.digits)}" for name, value in claims)
        shown = (*blocks, Paragraph((say("sheet_answer", claim=Code(hand_in)),)))
        return shown, tuple(Claim(name, value) for name, value in claims)

    def exercises(self) -> tuple[Exercise, ...]:
        c = self.chosen
        T = self.steps
        items: list[Exercise] = []
        # 1. a state: the forward pass at step 2 (the first step where the recurrence adds a term)
        t = 1 if T > 1 else 0
        z, a = self.net_of(t, c.unit), self.state(t, c.unit)
        lines = [
            Line(definition(z, self.net.net_definitions[z], self.value(z))),
            Line(definition(a, self.net.out_definitions[a], self.value(a))),
        ]
        answer, claims = self.answer([(self.claim(a.name), float(self.exact[a]))], [Equations(tuple(lines))])
        question_state = say("rnn_ex_state", a=Math(a), j=c.unit + 1, t=t + 1, before=max(t, 1))
        items.append(Exercise((Paragraph((question_state,)),), answer, claims))
        # 2. a δ at an earlier step, from the δs of the step after it
        if T > 1:
            t = T - 2
            d = self.delta(t, c.unit)
            lines = [
                Line(
                    definition(
                        self.delta(T - 1, j),
                        self.net.delta_definitions[self.delta(T - 1, j)],
                        self.value(self.delta(T - 1, j)),
                    )
                )
                for j in range(self.units)
            ]
            lines.append(Line(definition(d, self.net.delta_definitions[d], self.value(d))))
            name = self.claim(delta_name(self.net_of(t, c.unit).name))
            answer, claims = self.answer([(name, float(self.exact[d]))], [Equations(tuple(lines))])
            question = say("rnn_ex_delta", delta=Math(d), t=t + 1, next=t + 2)
            items.append(Exercise((Paragraph((question,)),), answer, claims))
        # 3. the last step's contribution to ∂E/∂u, then the whole gradient from the other steps' contributions
        terms = self.terms(c.u)
        if terms:
            last_t, last = terms[-1]
            others = [(t2, term) for t2, term in terms[:-1]]
            given = [
                Line(
                    EquationChain(
                        Contribution(LOSS_SYMBOL, c.u, (self.net_of(t2, c.unit),)), (Value(float(term.value or 0)),)
                    )
                )
                for t2, term in others
            ]
            asked: list[Block] = [
                Paragraph(
                    (
                        say(
                            "rnn_ex_sum",
                            u=Math(c.u),
                            t=last_t + 1,
                            delta=Math(last.delta),
                            partial=Math(Partial(LOSS_SYMBOL, c.u)),
                            contribution=Math(Contribution(LOSS_SYMBOL, c.u, (self.net_of(last_t, c.unit),))),
                        ),
                    )
                ),
            ]
            if given:
                asked.append(Equations(tuple(given), caption=say("rnn_ex_sum_given")))
            delta_claim = self.claim(delta_name(self.net_of(last_t, c.unit).name))
            answer, claims = self.answer(
                [(delta_claim, float(self.exact[last.delta])), (self.gradient_claim(c.u), self.gradient(c.u))],
                [Equations((self.delta_line(last.delta), *self.sum_lines(c.u)))],
            )
            items.append(Exercise(tuple(asked), answer, claims))
        # 4. one step of gradient descent for u
        from ..check.claims import compute

        (new,) = compute(self.batch, [f"{c.u.name}'"])
        (g,) = compute(self.batch, [f"dE/d{c.u.name}"])  # the batch's gradient moves the weight
        step = self.update_sentence(c.u, float(self.exact[c.u]), g, new)
        answer, claims = self.answer([(f"{c.u.name}'", new)], [Paragraph((step,))])
        rate = self.batch.spec.training.learning_rate
        items.append(Exercise((Paragraph((say("sheet_update", weight=Math(c.u), eta=Num(rate)),)),), answer, claims))
        return tuple(items)
