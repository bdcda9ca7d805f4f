"""Exercise sheets as lecture plans: one student's questions, and the answer key with the working.

:func:`sheet_exercises` decides the questions of a sheet (an output, the loss, an
output weight's gradient, a hidden δ, a first-layer weight's gradient and its
update): each is an :class:`~.plan.Exercise` whose answer is worked as equation
chains and whose :class:`~.plan.Claim` s are what ``derive check`` grades.
:func:`sheet_plan` lays them out as a document of its own (the network, the given
numbers, then the questions alone or the worked answers alone), which the
lecture's renderers (:mod:`.latex`, :mod:`.html`) turn into a PDF or a web page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.worked import Worked

import sympy as sp

from ..check.claims import compute
from ..core.chain import derive
from ..core.network import LOSS_SYMBOL, Neuron
from ..core.rules import Activation
from ..present.display import display_point
from ..present.equations import Contribution, Partial, definition, product, total
from ..present.numbers import DEFAULT_DIGITS, format_number
from ..present.update import Update, update_of
from ..spec.naming import delta_name
from .build import network_sketch
from .latex import words
from .plan import (
    Block,
    Claim,
    Code,
    Equations,
    Exercise,
    Exercises,
    Field,
    LecturePlan,
    Line,
    Math,
    Num,
    Paragraph,
    Say,
    Section,
    Table,
    Text,
    say,
)
from .update import WithUpdate, first_step, step_values

MAX_FORWARD_NEURONS = 12  # neurons whose forward pass is worked out in the key (the output layer always is)
MAX_DEFINITIONS = 12  # neurons whose net and out are defined on the sheet
MAX_LISTED_PATHS = 4  # a gradient with more paths is worked in δ form
GIVENS_PER_ROW = 3  # (symbol, value) pairs on one row of the table of given numbers
HAND_IN_DIGITS = 6  # significant digits a student hands in, correctly rounded (a variant records it: [grading])

SHEET, KEY = "sheet", "key"


def sheet_exercises(model: Worked, digits: int = DEFAULT_DIGITS) -> tuple[Exercise, ...]:
    """The questions of a sheet with their worked answers and the claims that grade them."""
    from ..spec.sequences import require_workable

    require_workable(model.spec, "derive exercises")
    from .maps import conv_exercises, has_maps

    if has_maps(model.network):  # a conv network: a kernel weight's sum over its uses, a bias, a pool, a δ map
        model.network.require_numbers("derive exercises")
        return conv_exercises(model, digits)
    from .sequences import has_rnn, recurrent_exercises

    if has_rnn(model.network):  # backpropagation through time: a state, a δ back in time, a sum over steps
        return recurrent_exercises(model, digits)
    return _Questions(model, digits).all()


class _Questions:
    def __init__(self, model: Worked, digits: int) -> None:
        model.network.require_numbers("derive exercises")
        assert model.point is not None
        self.model = model
        self.net = model.network
        self.exact = model.point
        self.digits = digits

    def all(self) -> tuple[Exercise, ...]:
        net = self.net
        out = net.output_layer.neurons[-1]
        items = [self.forward(out), self.loss()]
        last_weight = net.output_layer.weights[-1][-1]
        items.append(self.gradient(last_weight))
        if len(net.layers) > 2:
            items.append(self.delta(net.layers[-2].neurons[-1]))
        first = net.parameters[0]
        if first != last_weight:
            items.append(self.gradient(first))
        items.append(self.update(first))
        return tuple(items)

    def answer(self, name: str, value: float, lines: list[Line]) -> tuple[Block, ...]:
        """The working, then the line the student hands in (as the claims file writes it)."""
        claim = Code(f"{name} = {format_number(value, self.digits)}")
        # a factor shared by two paths is worked out once
        return (Equations(tuple(dict.fromkeys(lines))), Paragraph((say("sheet_answer", claim=claim),)))

    def forward(self, o: Neuron) -> Exercise:
        net = self.net
        lines: list[Line] = []
        shown = 0
        for layer in net.layers[1:]:
            for n in layer.neurons:
                assert n.net is not None
                if shown < MAX_FORWARD_NEURONS or layer is net.output_layer:
                    lines.append(Line(definition(n.net, net.net_definitions[n.net], self.exact[n.net])))
                    lines.append(Line(definition(n.out, net.out_definitions[n.out], self.exact[n.out])))
                    shown += 1
        value = self.exact[o.out]
        return Exercise(
            (Paragraph((say("sheet_forward", symbol=Math(o.out)),)),),
            self.answer(o.out.name, value, lines),
            (Claim(o.out.name, value),),
        )

    def loss(self) -> Exercise:
        value = self.exact[LOSS_SYMBOL]
        line = Line(definition(LOSS_SYMBOL, self.net.loss_expression, value))
        return Exercise(
            (Paragraph((say("sheet_loss"),)),),
            self.answer("E", value, [line]),
            (Claim("E", value),),
        )

    def gradient(self, parameter: sp.Symbol) -> Exercise:
        """Each path's factors (a shared factor once), each path's product, their sum; or the δ form."""
        d = derive(self.net, parameter, self.model.point)  # exercises are for one sample
        assert d.value is not None
        lhs = Partial(LOSS_SYMBOL, parameter)
        lines: list[Line] = []
        if d.paths and len(d.paths) <= MAX_LISTED_PATHS:
            for path in d.paths:
                lines += [Line(definition(Partial(f.of, f.wrt), f.expr, f.value)) for f in path.factors]
            common = set.intersection(*(set(p.nodes) for p in d.paths))
            for path in d.paths:
                via = tuple(s for s in reversed(path.nodes) if s not in common and self.net.info[s.name].kind == "out")
                quantity = Contribution(LOSS_SYMBOL, parameter, via) if len(d.paths) > 1 else lhs
                factors = tuple(Partial(f.of, f.wrt) for f in path.factors)
                lines.append(Line(product(quantity, factors, tuple(f.value for f in path.factors), path.value)))
            if len(d.paths) > 1:
                lines.append(Line(total(lhs, tuple(p.value for p in d.paths), d.value)))
        else:  # too many paths to list: the δs from the output down, then BP4
            term = d.terms[0]
            layer = self.net.layers[self.net.info[parameter.name].layer]
            lines += self.delta_lines(layer.neurons[self.net.info[parameter.name].row or 0])
            lines.append(Line(definition(lhs, term.expr, float(d.value))))
        name = f"dE/d{parameter.name}"
        return Exercise(
            (Paragraph((say("sheet_gradient", partial=Math(lhs)),)),),
            self.answer(name, float(d.value), lines),
            (Claim(name, float(d.value)),),
        )

    def delta_lines(self, neuron: Neuron) -> list[Line]:
        """The δs of every layer above the neuron (BP1, BP2), then its own."""
        net = self.net
        lines = []
        for layer in net.layers[neuron.layer + 1 :]:
            for n in layer.neurons:
                assert n.delta is not None
                lines.append(Line(definition(n.delta, net.delta_definitions[n.delta], self.exact[n.delta])))
        assert neuron.delta is not None
        lines.append(Line(definition(neuron.delta, net.delta_definitions[neuron.delta], self.exact[neuron.delta])))
        return lines

    def delta(self, hidden: Neuron) -> Exercise:
        assert hidden.delta is not None and hidden.net is not None
        name = delta_name(hidden.net.name)
        value = self.exact[hidden.delta]
        return Exercise(
            (Paragraph((say("sheet_delta", symbol=Math(hidden.delta)),)),),
            self.answer(name, value, self.delta_lines(hidden)),
            (Claim(name, value),),
        )

    def update(self, parameter: sp.Symbol) -> Exercise:
        """p' = p − η·∂E/∂p: the gradient from the derivation, p' from one training step; for another optimiser,
        its first step (every line of its rule, from the optimiser's own terms and the engine's numbers)."""
        worked = first_step(self.model, parameter)
        if worked is not None:
            hand_in = ", ".join(f"{name} = {format_number(value, self.digits)}" for name, value in worked.claims)
            return Exercise(
                worked.question,
                (*worked.answer, Paragraph((say("sheet_answer", claim=Code(hand_in)),))),
                tuple(Claim(name, value) for name, value in worked.claims),
            )
        derivation = derive(self.net, parameter, self.model.point)
        assert derivation.value is not None
        rate = self.model.spec.training.learning_rate
        name = f"{parameter.name}'"
        (value,) = compute(self.model, [name])
        step = say(
            "sheet_update_answer",
            weight=Math(parameter),
            partial=Math(Partial(LOSS_SYMBOL, parameter)),
            old=Num(self.exact[parameter]),
            eta=Num(rate),
            g=Num(float(derivation.value), bracket=True),
            new=Num(value),
        )
        claim = Code(f"{name} = {format_number(value, self.digits)}")
        return Exercise(
            (Paragraph((say("sheet_update", weight=Math(parameter), eta=Num(rate)),)),),
            (Paragraph((step,)), Paragraph((say("sheet_answer", claim=claim),))),
            (Claim(name, value),),
        )


ACTIVATION = sp.Function("f", real=True)  # the activation a sheet's layer sentence defines


def sheet_plan(
    model: Worked,
    exercises: tuple[Exercise, ...],
    label: str,
    part: str,
    lang: str = "en",
    digits: int = DEFAULT_DIGITS,
) -> LecturePlan:
    """Student ``label``'s sheet (``part`` SHEET: the questions alone) or answer key (KEY: the worked answers)."""
    if part not in (SHEET, KEY):
        raise ValueError(part)
    net = model.network
    assert model.point is not None
    spec = model.spec
    definitions: list[Line] = []
    shown = 0
    for layer in net.layers[1:]:
        for n in layer.neurons:
            assert n.net is not None
            if shown < MAX_DEFINITIONS:
                definitions.append(Line(definition(n.net, net.net_definitions[n.net], None)))
                # an elementwise activation is the f its layer's sentence below defines: out = f(net), one line
                out = ACTIVATION(n.net) if isinstance(layer.rule, Activation) else net.out_definitions[n.out]
                definitions.append(Line(definition(n.out, out, None)))
            shown += 1
    from .maps import has_maps, layers_table, map_givens

    if has_maps(net):  # maps: the layers and their names, the input map and the kernels, as the conv lecture has them
        conv = next(layer for layer in net.layers if layer.spec.kind.startswith("conv"))
        blocks: list[Block] = [
            Paragraph((say("conv_sheet_intro", l=conv.number),)),
            layers_table(net),
            *map_givens(model),
            Equations(tuple(definitions), say("conv_sheet_first")),
        ]
    else:
        blocks = [
            Paragraph((_network_intro(model),)),
            network_sketch(model),  # a small drawing: which neuron is which
            Equations(tuple(definitions)),
        ]
    if shown > MAX_DEFINITIONS:
        blocks.append(Paragraph((say("sheet_more"),)))
    rules = []
    layers = list(net.layers[1:])
    while layers:
        layer = layers.pop(0)
        if isinstance(layer.rule, Activation):
            # layers with the same activation share one sentence: "Layers 2 and 3: f(x) = …"
            same = [layer]
            while layers and isinstance(layers[0].rule, Activation) and layers[0].rule.f == layer.rule.f:
                same.append(layers.pop(0))
            if len(same) == 1:
                rules.append(say("sheet_activation", layer=layer.number, formula=Math(layer.rule.f)))
            else:
                joined = [str(x.number) for x in same]
                listed = ", ".join(joined[:-1]) + words(lang)["and_word"] + joined[-1]
                rules.append(say("sheet_activation_many", layers=Text(listed), formula=Math(layer.rule.f)))
        else:
            rules.append(say("sheet_softmax", layer=layer.number))
    blocks.append(Paragraph(tuple(rules)))
    blocks.append(Equations((Line(definition(LOSS_SYMBOL, net.loss_expression, None)),), say("sheet_loss_is")))
    network = Section(say("network"), tuple(blocks), key="network", numbered=False)

    # the numbers a student starts from: inputs, parameters, targets and η (nothing derived)
    symbols = [*net.input_layer.outs, *net.parameters]
    symbols += [n.target for n in net.output_layer.neurons if n.target is not None]
    cells: list[tuple[Field, Field]] = [(Math(s), Num(model.point[s], digits)) for s in symbols]
    cells.append((say("sheet_rate"), Num(spec.training.learning_rate, digits)))
    worked = _optimiser_step(model, exercises)
    if worked is not None:  # the optimiser's settings are given too; its exercise's lines substitute numbers
        update, values = worked
        cells += [
            (Math(line.chain.lhs), Num(line.chain.value or 0.0, digits)) for line in update.setting_lines(True)[1:]
        ]
    rows = []
    for start in range(0, len(cells), GIVENS_PER_ROW):
        chunk = cells[start : start + GIVENS_PER_ROW]
        chunk += [(Text(""), Text(""))] * (GIVENS_PER_ROW - len(chunk))
        rows.append(tuple(field for pair in chunk for field in pair))
    header = (say("symbol"), say("value")) * GIVENS_PER_ROW
    givens = Section(
        say("sheet_givens"),
        (Table(header, tuple(rows), (False, True) * GIVENS_PER_ROW),),
        key="givens",
        numbered=False,
    )

    spec_file = f"student-{label}.toml"
    if part == SHEET:
        work = Exercises(
            exercises,
            say("sheet_intro"),
            part="questions",
            hand_in=say("sheet_hand_in", digits=spec.required_digits or HAND_IN_DIGITS),
        )
        last = Section(say("sheet_questions"), (work,), key="questions", numbered=False)
    else:
        # the answers file derive writes beside the sheet; a student's own file has the same lines
        command = Code(f"derive check {spec_file} --claims student-{label}-answers.txt")
        # how the key is graded, said with its intro: a line of its own would start a page of its own
        work = Exercises(exercises, say("sheet_key_intro_graded", command=command), part="answers")
        last = Section(
            say("sheet_answers"),
            (work,),
            key="answers",
            numbered=False,
        )
    return LecturePlan(
        lang=lang,
        title=spec.title_zh if lang == "zh" and spec.title_zh else spec.title,  # as the lecture chooses it
        description="",
        source=spec_file,
        sections=(network, givens, last),
        network=net,
        point=WithUpdate(values, display_point(net, model.point)) if worked else display_point(net, model.point),
        digits=digits,
        subtitle=say("sheet_heading" if part == SHEET else "key_heading", label=Text(label)),
    )


def _network_intro(model: Worked) -> Say:
    """The sheet's first sentence: the layer sizes, or a recurrent network's steps and units."""
    from .sequences import has_rnn, sheet_intro

    net = model.network
    if has_rnn(net):
        return sheet_intro(model)
    return say("sheet_network_intro", sizes=Text("–".join(str(layer.size) for layer in net.layers)))


def _optimiser_step(model: Worked, exercises: tuple[Exercise, ...]) -> tuple[Update, dict[sp.Symbol, float]] | None:
    """The optimiser's step a sheet asks for (its weight is the one handed in after one step: ``w1@1``), with the
    numbers its lines stand for; None when the sheet asks for plain gradient descent."""
    weights = [c.name[:-2] for e in exercises for c in e.claims if c.name.endswith("@1") and "(" not in c.name]
    if not weights:
        return None
    update = update_of(model, weights[0], steps=1)
    return None if update is None else (update, step_values(update))


__all__ = ["KEY", "SHEET", "sheet_exercises", "sheet_plan"]
