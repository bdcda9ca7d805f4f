"""A derivation laid out as steps: what the CLI prints and the JSON holds.

Each step keeps the sympy expression it shows; its value is evaluated from that
expression at the spec's numbers, never written in beside it.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from ..core.chain import BatchDerivation, DeltaTerm, Derivation, Factor, Path, evaluate
from ..core.network import LOSS_SYMBOL
from ..core.policy import Number, as_float
from ..core.uses import shared_uses
from ..errors import TooLargeError
from . import equations, uses
from . import printing as pr
from .equations import (
    EquationChain,
    LatexChainPrinter,
    Numbers,
    Partial,
    Product,
    Quantity,
    TextChainPrinter,
    definition,
)
from .numbers import bracket, format_number
from .width import DEFAULT_WIDTH, fold

CLOSED_FORM_TEXT_LIMIT = 1500


def json_text(data: Any, warn: Callable[[str], None] | None = None) -> str:
    """``data`` as the JSON derive prints: indented, UTF-8, NaN and infinities written as null (``warn`` is told)."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            if warn is not None:
                warn(f"a value is {value}; written as null")
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``quantity = expression = numbers = value``."""

    kind: str  # factor, path, delta, term, sum
    quantity: str  # plain text, e.g. ∂E/∂out_o1
    quantity_latex: str
    expr: sp.Expr = field(repr=False)
    expression: str  # the expression in symbols, plain text
    latex: str  # the whole line in LaTeX
    numbers: str  # the expression with numbers substituted, plain text
    value: Number | None
    parts: tuple[Step, ...] = ()
    latex_parts: tuple[str, ...] = ()  # the sides of ``latex``, for aligned layouts
    equation: EquationChain = field(
        default=EquationChain(LOSS_SYMBOL, ()), repr=False
    )  # what every line is printed from

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "quantity": self.quantity,
            "expression": self.expression,
            "latex": self.latex,
            "numbers": self.numbers,
            "value": as_float(self.value),  # beyond float64's range: inf, written as null
        }
        if self.parts:
            key = "factors" if self.kind in ("path", "term", "product") else "terms"
            data[key] = [p.to_json() for p in self.parts]
        return data


class Reporter:
    """Turns a :class:`Derivation` into steps, text and JSON."""

    def __init__(self, derivation: Derivation, digits: int = pr.DEFAULT_DIGITS) -> None:
        self.d = derivation
        self.names = derivation.network.latex
        self.point = derivation.point or {}
        self.digits = digits
        self.text_printer = TextChainPrinter(self.point, digits)
        self.latex_printer = LatexChainPrinter(self.names, self.point, digits)
        # a kernel weight or a conv bias: the sum over its uses (positions), listed or folded into maps
        self.uses = shared_uses(derivation.network, derivation.quantity)

    # -- formatting helpers --------------------------------------------------

    def num(self, value: Number | None) -> str:
        return "?" if value is None else self.text_printer.number(value)

    def line_parts(self, lhs: Quantity, expr: sp.Expr, value: Number | None) -> tuple[str, ...]:
        """lhs, the expression, the expression with numbers, the value (repeats dropped)."""
        return tuple(self.latex_printer.sides(definition(lhs, expr, value)))

    def step(
        self,
        kind: str,
        of: sp.Symbol,
        wrt: sp.Symbol,
        expr: sp.Expr,
        value: Number | None,
        parts: tuple[Step, ...] = (),
    ) -> Step:
        lhs = Partial(of, wrt)
        latex_parts = self.line_parts(lhs, expr, value)
        return Step(
            kind=kind,
            quantity=self.text_printer.quantity(lhs),
            quantity_latex=self.latex_printer.quantity(lhs),
            expr=expr,
            expression=pr.text(expr),
            latex=" = ".join(latex_parts),
            numbers=self.text_printer.substituted(expr) if self.point else "",
            value=value,
            parts=parts,
            latex_parts=latex_parts,
            equation=definition(lhs, expr, value),
        )

    def factor(self, f: Factor) -> Step:
        return self.step("factor", f.of, f.wrt, f.expr, f.value)

    def product(self, kind: str, of: sp.Symbol, wrt: sp.Symbol, parts: tuple[Step, ...], value: Number | None) -> Step:
        """A product or sum of earlier steps, shown by their values."""
        multiply = kind in ("path", "term")
        lhs = Partial(of, wrt)
        values = tuple(p.value for p in parts)
        if multiply:
            equation = equations.product(lhs, tuple(p.equation.lhs for p in parts), values, value)
        else:
            equation = equations.total(lhs, values, value)
        numbers = Numbers(tuple(v if v is not None else float("nan") for v in values), "*" if multiply else "+")
        expr = sp.Mul(*(p.expr for p in parts)) if multiply else sp.Add(*(p.expr for p in parts))
        latex_parts = tuple(side for side in self.latex_printer.sides(equation) if side.strip())  # an empty sum: none
        return Step(
            kind=kind,
            quantity=self.text_printer.side(Product(tuple(p.equation.lhs for p in parts)))
            if kind == "path"
            else self.text_printer.quantity(lhs),
            quantity_latex=self.latex_printer.quantity(lhs),
            expr=expr,
            expression=pr.text(expr),
            latex=" = ".join(latex_parts),
            numbers=self.text_printer.side(numbers),
            value=value,
            parts=parts,
            latex_parts=latex_parts,
            equation=equation,
        )

    # -- the steps -------------------------------------------------------------

    def path_step(self, path: Path) -> Step:
        parts = tuple(self.factor(f) for f in path.factors)
        return self.product("path", LOSS_SYMBOL, self.d.quantity, parts, path.value)

    def delta_step(self, term: DeltaTerm) -> Step:
        delta = term.delta
        definition_ = term.definition
        # the δ's own value (exact, from the stable form where the chain-rule form is 0/0 in the digits carried)
        value = term.delta_value if term.delta_value is not None else evaluate(definition_, self.point)
        net = term.neuron.net
        assert net is not None
        latex_parts = self.line_parts(delta, definition_, value)
        return Step(
            kind="delta",
            quantity=f"{delta.name} = ∂E/∂{net.name}",
            quantity_latex=self.names[delta],
            expr=definition_,
            expression=pr.text(definition_),
            latex=" = ".join(latex_parts),
            numbers=self.text_printer.substituted(definition_) if self.point else "",
            value=value,
            latex_parts=latex_parts,
            equation=definition(delta, definition_, value),
        )

    def term_step(self, term: DeltaTerm) -> Step:
        delta = self.delta_step(term)
        local = self.factor(term.local)
        if term.local.wrt == term.local.of:  # ∂E/∂net is δ itself
            return delta
        net = term.neuron.net
        assert net is not None
        product = self.product("term", LOSS_SYMBOL, self.d.quantity, (delta, local), term.value)
        return Step(
            kind="term",
            quantity=f"∂E/∂{net.name} · ∂{net.name}/∂{self.d.quantity.name}",
            quantity_latex=product.quantity_latex,
            expr=term.expr,
            expression=pr.text(term.expr),
            latex=product.latex,
            numbers=product.numbers,
            value=term.value,
            parts=(delta, local),
            latex_parts=product.latex_parts,
            equation=product.equation,
        )

    def steps(self) -> list[Step]:
        """Path form: one step per path, then their sum. δ form: one step per δ term, then the sum."""
        q = self.d.quantity
        if self.uses is not None and not uses.listed(self.uses):
            return [self.folded_step()]
        if self.d.paths and self.uses is None:
            parts = tuple(self.path_step(p) for p in self.d.paths)
        else:
            parts = tuple(self.term_step(t) for t in self.d.terms)
        if len(parts) == 1:
            return list(parts)
        total = self.product("sum", LOSS_SYMBOL, q, parts, self.d.value)
        return [*parts, total]

    def folded_step(self) -> Step:
        """A shared parameter's sum over more uses than are listed: one step, its value (the maps show the rest)."""
        q = self.d.quantity
        lhs = Partial(LOSS_SYMBOL, q)
        value = "?" if self.d.value is None else self.latex_printer.number(self.d.value)
        latex_parts = (self.latex_printer.quantity(lhs), value)
        words = f"Σ δ · ∂z/∂{q.name} over its {self.uses.count if self.uses else 0} uses"
        return Step(
            kind="sum",
            quantity=self.text_printer.quantity(lhs),
            quantity_latex=latex_parts[0],
            expr=sp.Symbol(words),
            expression=words,
            latex=" = ".join(latex_parts),
            numbers="",
            value=self.d.value,
            latex_parts=latex_parts,
            equation=definition(lhs, sp.Symbol(words), self.d.value),
        )

    def delta_steps(self) -> list[Step]:
        """The δ form, shown besides the paths when they are listed."""
        return [self.term_step(t) for t in self.d.terms]

    # -- closed form -----------------------------------------------------------

    def closed_form(self) -> tuple[sp.Expr | None, str]:
        """(expression, "") or (None, why not)."""
        try:
            return self.d.closed_form(), ""
        except TooLargeError as exc:
            return None, exc.message

    # -- outputs ----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        closed, why = self.closed_form()
        q = self.d.quantity
        data: dict[str, Any] = {
            "parameter": q.name,
            "kind": self.d.network.info[q.name].kind,
            "value": as_float(self.d.value),
            "value_text": None if self.d.value is None else pr.format_number(self.d.value, self.digits),
            "form": self.d.form,
            "paths": self.d.path_count,
            "expression": pr.text(closed) if closed is not None else None,
            "latex": pr.latex(closed, self.names) if closed is not None else None,
            "local_expression": pr.text(self.d.expression),
            "local_latex": pr.latex(self.d.expression, self.names),
            "steps": [s.to_json() for s in self.steps()],
        }
        if self.d.paths and self.d.terms and self.uses is None:
            data["delta_form"] = [s.to_json() for s in self.delta_steps()]
        if self.uses is not None:
            data["form"] = "uses" if uses.listed(self.uses) else "maps"
            data["uses"] = uses.uses_json(uses.use_maps(self.d, self.uses))
        if closed is None:
            data["expression_note"] = why
        return data

    def rows(self) -> list[tuple[str, str]]:
        """(lhs, "rhs = … = value") in LaTeX for every step: factors, then their products, then the sum."""
        rows: list[tuple[str, str]] = []

        paths = [s for s in self.steps() if s.kind == "path"]

        def walk(step: Step) -> None:
            for part in step.parts:
                walk(part)
            lhs, *rest = step.latex_parts
            if step.kind == "path" and len(paths) > 1:  # each path's share of ∂E/∂q, numbered as the text numbers it
                lhs = rf"\text{{path {paths.index(step) + 1}: }} {lhs}"
            rows.append((lhs, " = ".join(rest)))

        for step in self.steps():
            walk(step)
        return list(dict.fromkeys(rows))  # a step met twice (a path inside the sum) is written once

    def latex(self) -> str:
        """Every step as an ``align*`` row: LaTeX for a document."""
        lines = [f"  {lhs} &= {rhs}" if rhs else f"  {lhs}" for lhs, rhs in self.rows()]
        return "\\begin{align*}\n" + " \\\\\n".join(lines) + "\n\\end{align*}\n"

    def text(self, show_closed_form: bool | None = None, width: int | None = DEFAULT_WIDTH) -> str:
        """What ``derive grad SPEC PARAM`` prints, no line wider than ``width`` (None: as long as they come).

        By default the closed form is printed only when it fits on one line of ``width``.
        """
        return fold(self._text(show_closed_form, width), width)

    def _text(self, show_closed_form: bool | None, width: int | None) -> str:
        d = self.d
        q = d.quantity
        lines: list[str] = []
        missing = d.network.missing_numbers()
        if missing:
            lines += ["(symbolic only: " + ", ".join(missing) + " not given)", ""]
        head = f"∂E/∂{q.name} by the chain rule"
        if self.uses is not None:
            lines.extend(self._uses_lines(head, width))
        elif d.paths:
            noun = "path" if d.path_count == 1 else "paths"
            lines.append(f"{head}: {d.path_count} {noun} from {q.name} to E")
        elif d.path_count == 0:
            why = (
                "every max pool it feeds passes on another entry of its windows"
                if d.network.has_max_pools
                else "nothing it feeds reaches E"
            )
            lines.append(f"{head}: no path from {q.name} reaches E ({why}), so ∂E/∂{q.name} = 0")
        else:
            lines.append(f"{head}: {d.path_count} paths from {q.name} to E, folded into δ form (BP2)")
        lines.append("")
        steps = self.steps() if self.uses is None or uses.listed(self.uses) else []
        for i, step in enumerate(steps):
            if step.kind == "path":
                if len(d.paths) > 1:
                    route = " → ".join(s.name for s in reversed(d.paths[i].nodes))
                    lines.append(f"path {i + 1}: {route}")
                lines.extend(self._product_lines(step))
            elif step.kind in ("term", "delta"):
                lines.extend(self._term_lines(step))
            elif step.kind == "sum":
                if not step.parts:  # no path: the header said why it is 0
                    continue
                noun = "paths" if d.paths else "terms"
                if self.uses is not None:
                    noun = "steps" if self.uses.steps else "uses"
                lines.append(f"sum over {noun}:")
                if self.point:
                    lines.append(f"  ∂E/∂{q.name} = {step.numbers}")
                    lines.append(f"  ∂E/∂{q.name} = {self.num(step.value)}")
                else:
                    lines.append(f"  ∂E/∂{q.name} = the sum of the {len(step.parts)} terms above")
            lines.append("")
        if self.uses is not None and uses.listed(self.uses) and self.point:
            lines.append(
                "the same steps in a table:" if self.uses.steps else "the same uses as maps, position by position:"
            )
            lines += uses.table_block(d, uses.use_maps(d, self.uses), width)
            lines.append("")
        if d.paths and d.terms and len(d.paths) > 1 and self.uses is None:
            lines.append("the same sum in δ form (each δ = ∂E/∂net, shared by every path through it):")
            for step in self.delta_steps():
                lines.extend(self._term_lines(step))
            lines.append("")
        closed, why = self.closed_form()
        if closed is None:
            lines.append(f"closed form: not shown: {why}")
        else:
            body = pr.text(closed)
            line = f"  ∂E/∂{q.name} = {body}"
            limit = CLOSED_FORM_TEXT_LIMIT if width is None else width
            if show_closed_form is None and len(line if width is not None else body) > limit:
                lines.append(f"closed form: {len(body):,} characters; pass --closed-form to print it")
            elif show_closed_form is not False:
                lines.append("closed form:")
                lines.append(f"  ∂E/∂{q.name} = {body}")
        return "\n".join(lines).rstrip() + "\n"

    def _uses_lines(self, head: str, width: int | None) -> list[str]:
        """The head of a shared parameter's text: what it is, its uses; beyond the listed ones, the maps."""
        assert self.uses is not None
        d, count = self.d, self.uses.count
        noun = ("time step" if count == 1 else "time steps") if self.uses.steps else ("use" if count == 1 else "uses")
        lines = [f"{head}: a sum over {count} {noun}", ""]
        prose = [
            *uses.describe(self.uses, d),
            f"(Through the layers after it, that is {d.path_count:,} paths to E, summed by the δs: BP2.)",
        ]
        for paragraph in prose:  # wrapped as prose, not folded as an equation
            lines += textwrap.wrap(paragraph, width) if width else [paragraph]
        if not uses.listed(self.uses):
            lines.append("")
            lines += uses.folded_lines(d, uses.use_maps(d, self.uses), self.digits, width)
        return lines

    def _factor_lines(self, step: Step, indent: str = "  ") -> list[str]:
        width = max(len(step.quantity), 1)
        first, *rest = self.text_printer.sides(step.equation)[1:] or [step.expression]
        pad = indent + " " * width
        return [f"{indent}{step.quantity} = {first}", *(f"{pad} = {side}" for side in rest)]

    def _product_lines(self, step: Step) -> list[str]:
        q = self.d.quantity.name
        lines = [f"  ∂E/∂{q} = {step.quantity}"]
        for part in step.parts:
            lines.extend(self._factor_lines(part, "    "))
        if self.point:
            lines.append(f"  ∂E/∂{q} = {step.numbers} = {self.num(step.value)}")
        else:
            lines.append(f"  this path's term = {step.expression}")
        return lines

    def _term_lines(self, step: Step) -> list[str]:
        if step.kind == "delta":
            return self._factor_lines(step)
        q = self.d.quantity.name
        delta, local = step.parts
        lines = [f"  {delta.quantity.split(' = ')[0]} · {local.quantity}"]
        if self.uses is not None and self.uses.steps:  # name the step: z2_1_t3 is step 3
            net = delta.quantity.split("∂E/∂")[-1]
            lines.insert(0, f"  step t = {net.rsplit('_t', 1)[-1]}:")
        lines.extend(self._factor_lines(delta, "    "))
        if self.uses is not None and delta.expr == 0:
            why = uses.zero_delta_note(self.d.network, self.d.terms[0].neuron.layer)
            if why:
                lines.append(f"      ({why})")
        lines.extend(self._factor_lines(local, "    "))
        if self.point:
            lines.append(f"    term = {step.numbers} = {self.num(step.value)}")
        else:
            lines.append(f"    term of ∂E/∂{q} = {step.expression}")
        return lines


def combined(terms: list[str], values: list[Number | None], reduction: str, digits: int) -> tuple[str, str]:
    """A batch's value from its samples' as text: ("(1/N)·(t1 + … )", "(1/N)·(v1 + …)"), or the plain sum."""
    scale = f"(1/{len(terms)})·" if reduction == "mean" else ""
    numbers = " + ".join("?" if v is None else bracket(format_number(v, digits), v) for v in values)
    return f"{scale}({' + '.join(terms)})", f"{scale}({numbers})"


SIDE_BY_SIDE_COLUMNS = 5  # samples per block of the side-by-side table (a row of 8-digit numbers fits 100 columns)


def sample_line(d: Derivation, n: int, count: int, digits: int) -> str:
    """ "sample 2 of 4 (x1 = 0, x2 = 1; y1 = 1)" from the sample's own numbers."""
    net = d.network
    point = d.point or {}
    inputs = [s for s in net.input_layer.outs if s in point]
    targets = [t.target for t in net.output_layer.neurons if t.target is not None and t.target in point]
    given = ", ".join(f"{s.name} = {format_number(point[s], digits)}" for s in inputs)
    wanted = ", ".join(f"{s.name} = {format_number(point[s], digits)}" for s in targets)
    return f"sample {n} of {count} ({given}" + (f"; {wanted})" if wanted else ")")


class BatchReporter:
    """Turns a :class:`BatchDerivation` into text, JSON and LaTeX: only formatting."""

    def __init__(self, batch: BatchDerivation, digits: int = pr.DEFAULT_DIGITS) -> None:
        self.b = batch
        self.digits = digits
        self.reporters = [Reporter(d, digits) for d in batch.samples]

    def num(self, value: Number | None) -> str:
        return "?" if value is None else format_number(value, self.digits)

    def combination(self) -> tuple[str, str]:
        """(∂E/∂q in the samples' terms, the same with their numbers), e.g. (1/4)·(∂E[1]/∂w + …)."""
        b, q = self.b, self.b.quantity.name
        terms = [f"∂E[{n}]/∂{q}" for n in range(1, len(b.samples) + 1)]
        return combined(terms, [d.value for d in b.samples], b.reduction, self.digits)

    def side_by_side(self) -> list[tuple[str, list[Number | None]]]:
        """The side-by-side table: (label, a value per sample) for each path or δ term, then ∂E[n]/∂q."""
        b, q = self.b, self.b.quantity.name
        first = b.samples[b.worked - 1]
        rows: list[tuple[str, list[Number | None]]] = []
        if len(first.paths) == 1:  # one path: its factors, sample by sample
            for i, f in enumerate(first.paths[0].factors):
                of = "E[n]" if f.of == LOSS_SYMBOL else f.of.name
                rows.append((f"∂{of}/∂{f.wrt.name}", [d.paths[0].factors[i].value for d in b.samples]))
        elif first.paths:  # each path by its number: the routes are listed above the table
            for i in range(len(first.paths)):
                rows.append((f"path {i + 1}", [d.paths[i].value for d in b.samples]))
        else:
            for i, term in enumerate(first.terms):
                net = term.neuron.net
                assert net is not None
                rows.append((f"{term.delta.name} = ∂E[n]/∂{net.name}", [d.terms[i].delta_value for d in b.samples]))
                if term.local.wrt != term.local.of:
                    rows.append((f"∂{net.name}/∂{q}", [d.terms[i].local.value for d in b.samples]))
        rows.append((f"∂E[n]/∂{q}", [d.value for d in b.samples]))
        return rows

    def table_lines(self) -> list[str]:
        count = len(self.b.samples)
        rows = self.side_by_side()
        width = max(len(label) for label, _ in rows)
        lines: list[str] = []
        for start in range(0, count, SIDE_BY_SIDE_COLUMNS):
            chosen = range(start, min(start + SIDE_BY_SIDE_COLUMNS, count))
            cells = [[self.num(values[n]) for n in chosen] for _, values in rows]
            column = max(10, *(len(c) for row in cells for c in row))
            lines.append(f"  {'':<{width}}  " + "  ".join(f"{f'sample {n + 1}':>{column}}" for n in chosen))
            for (label, _), row in zip(rows, cells):
                lines.append(f"  {label:<{width}}  " + "  ".join(f"{c:>{column}}" for c in row))
            lines.append("")
        return lines

    def text(self, show_closed_form: bool | None = None, width: int | None = DEFAULT_WIDTH) -> str:
        """What ``derive grad`` prints for a batch, no line wider than ``width`` (None: as long as they come)."""
        return fold(self._text(show_closed_form, width), width)

    def _text(self, show_closed_form: bool | None, width: int | None) -> str:
        b, q = self.b, self.b.quantity.name
        count = len(b.samples)
        how = (
            f"E = (1/{count})·(E[1] + … + E[{count}]), the mean of the samples' losses"
            if b.reduction == "mean"
            else f"E = E[1] + … + E[{count}], the sum of the samples' losses"
        )
        terms, numbers = self.combination()
        lines = [
            f"∂E/∂{q} over a batch of {count} samples: {how},",
            f"so ∂E/∂{q} = {terms}:",
            "the chain rule for each sample, with its own nets, outs and δs, then the " + b.reduction + ".",
            "",
            "── "
            + sample_line(b.samples[b.worked - 1], b.worked, count, self.digits)
            + f", worked in full: E here is E[{b.worked}] ──",
            "",
        ]
        lines += self.reporters[b.worked - 1].text(show_closed_form, width).rstrip("\n").split("\n")
        lines += ["", f"── every sample side by side ({'paths' if b.samples[0].paths else 'δ form'}) ──", ""]
        lines += [f"  {sample_line(d, n, count, self.digits)}" for n, d in enumerate(b.samples, 1)]
        first = b.samples[b.worked - 1]
        if len(first.paths) > 1:
            lines.append("")
            lines += [
                f"  path {i}: " + " → ".join(s.name for s in reversed(path.nodes))
                for i, path in enumerate(first.paths, start=1)
            ]
        lines.append("")
        lines += self.table_lines()
        lines += [
            f"── the batch: the {b.reduction} of the samples' gradients ──",
            f"  ∂E/∂{q} = {terms}",
            f"  {'':<{len(q) + 4}} = {numbers}",
            f"  {'':<{len(q) + 4}} = {self.num(b.value)}",
        ]
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> dict[str, Any]:
        b = self.b
        terms, numbers = self.combination()
        return {
            "parameter": b.quantity.name,
            "kind": b.network.info[b.quantity.name].kind,
            "value": as_float(b.value),
            "value_text": None if b.value is None else pr.format_number(b.value, self.digits),
            "samples": len(b.samples),
            "reduction": b.reduction,
            "worked_sample": b.worked,
            "combination": terms,
            "combination_numbers": numbers,
            "form": b.form,
            "paths": b.path_count,
            "per_sample": [r.to_json() for r in self.reporters],
        }

    def rows(self) -> list[tuple[str, str]]:
        """(lhs, "rhs = … = value") in LaTeX: the worked sample's steps, then the batch's mean (or sum)."""
        b, q = self.b, self.b.quantity
        name = b.network.latex[q]
        count = len(b.samples)
        scale = rf"\frac{{1}}{{{count}}}" if b.reduction == "mean" else ""
        values = " + ".join(bracket(self.num(d.value), d.value) for d in b.samples)
        combination = (
            rf"{scale}\sum_{{n=1}}^{{{count}}} \frac{{\partial E^{{[n]}}}}{{\partial {name}}}"
            rf" = {scale}\left({values}\right) = {self.num(b.value)}"
        )
        return [*self.reporters[b.worked - 1].rows(), (rf"\frac{{\partial E}}{{\partial {name}}}", combination)]

    def latex(self) -> str:
        """Sample 1's steps, then the combination, as ``align*`` rows."""
        count = len(self.b.samples)
        *sample, (lhs, rhs) = self.rows()
        n = self.b.worked
        rows = [rf"  \intertext{{Sample {n} of {count}, whose own loss $E^{{[{n}]}}$ is written $E$:}}"]
        rows += [f"  {left} &= {right}" if right else f"  {left}" for left, right in sample]
        rows.append(rf"  \intertext{{The batch, the {self.b.reduction} over its samples:}}")
        rows.append(f"  {lhs} &= {rhs}")
        return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}\n"
