"""One weight's update by the spec's optimiser, over two steps: the rule, then each line with its numbers.

The rule is :meth:`derive.core.optimizer.Optimizer.terms` (the same step as the generated module's ``update``,
a line per quantity); nothing here writes it again. The numbers come from the engine that trains
(:class:`derive.codegen.engine.Compiled`, through :class:`~derive.core.worked.Engine`): the parameter and the
optimiser's buffers after each step are its own, and each step's gradient is the derivation's value at the
engine's parameters (the exact pass, as ``derive grad`` shows it). A quantity no buffer keeps (Adam's m̂ and
v̂, the gradient with weight decay) is its line's formula evaluated at those numbers, as a shown factor is.

The chains are spelled twice, for text (``m_1``, ``w5@1``: ``derive check``'s name of w5 after one step) and
for LaTeX (``m_{1}``, ``{w_{5}}^{(1)}``); each spelling has its own symbols and the numbers to substitute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.printing.str import StrPrinter

from ..core.chain import derive, derive_batch, evaluate
from ..core.optimizer import (
    DECAYED_GRADIENT,
    DECAYED_PARAMETER,
    EXP_AVG_HAT,
    EXP_AVG_SQ_HAT,
    GRADIENT,
    PARAMETER,
    RATE,
    SETTING,
    STEP,
    Optimizer,
    Term,
)
from ..core.policy import as_float
from . import printing as pr
from .equations import EquationChain, Formula, LatexChainPrinter, Substituted, TextChainPrinter, Value
from .numbers import DEFAULT_DIGITS

if TYPE_CHECKING:
    from ..core.worked import Worked

STEPS = 2  # steps shown: the first (where the buffers start at 0) and one that uses them

# what each buffer and shown quantity is called on the page (torch's buffer names are the keys)
_TEXT = {
    "momentum_buffer": "m",
    "exp_avg": "m",
    "square_avg": "v",
    "exp_avg_sq": "v",
    EXP_AVG_HAT: "m̂",
    EXP_AVG_SQ_HAT: "v̂",
    GRADIENT: "g",
    DECAYED_GRADIENT: "g̃",
}
_LATEX = {
    "momentum_buffer": "m",
    "exp_avg": "m",
    "square_avg": "v",
    "exp_avg_sq": "v",
    EXP_AVG_HAT: r"\hat{m}",
    EXP_AVG_SQ_HAT: r"\hat{v}",
    GRADIENT: "g",
    DECAYED_GRADIENT: r"\tilde{g}",
}
_SETTING_TEXT = {"momentum": "μ", "weight_decay": "λ", "alpha": "α", "beta1": "β1", "beta2": "β2", "eps": "ε"}
_SETTING_LATEX = {
    "momentum": r"\mu",
    "weight_decay": r"\lambda",
    "alpha": r"\alpha",
    "beta1": r"\beta_{1}",
    "beta2": r"\beta_{2}",
    "eps": r"\varepsilon",
}

# the "why" of each line in a sentence of plain text (the lecture's are its word files', why_<key>)
WHY = {
    "descent": "each step moves the weight against its gradient, by η times it",
    "weight_decay": "L2 weight decay adds λ times the weight to its gradient: it pulls every weight towards 0",
    "momentum_sum": "momentum: a running sum of the gradients, each older one weighted by μ once more "
    "(the buffer starts at 0), so steps in a steady direction build up speed and gradients that flip sign cancel",
    "momentum_step": "the step follows the momentum buffer, not this step's gradient alone",
    "nesterov_step": "Nesterov momentum looks ahead: it steps along the gradient plus μ times the new buffer",
    "square_avg": "a running mean of the squared gradient: its root is the typical size of this weight's gradient",
    "rms_step": "an adaptive step size: the gradient over its running root mean square makes a step of about η "
    "whatever the gradient's scale (ε keeps the division safe)",
    "rms_momentum": "momentum over the adaptive steps: a running sum of the scaled gradients",
    "decoupled_decay": "AdamW's decoupled weight decay: the weight shrinks by the factor 1 - ηλ before the step, "
    "apart from the gradient, so the adaptive step does not rescale the decay",
    "first_moment": "momentum as a running mean: β1 of the mean so far and 1 - β1 of the new gradient",
    "second_moment": "a running mean of the squared gradients: how large this weight's gradients have been",
    "bias_correction": "bias correction: m starts at 0, so after t steps it carries only 1 - β1^t of the weight "
    "it should; dividing by that undoes the pull towards 0 (at step 1, m̂ is the gradient itself)",
    "bias_correction_sq": "the same bias correction for v, by 1 - β2^t",
    "adaptive_step": "an adaptive step size: m̂ over the root of v̂ is about ±1 while the gradient is steady, "
    "so every weight moves by about η whatever the scale of its gradient (ε keeps the division safe)",
}


@dataclass(frozen=True)
class Step:
    """One step of the engine for one parameter: its number t, and every quantity of the rule by its symbol.

    ``before`` holds the parameter and the buffers before the step and the step's gradient; ``after`` each
    line's target after it (the parameter and buffers as the engine left them).
    """

    t: int
    before: dict[sp.Symbol, float]
    after: dict[sp.Symbol, float]


@dataclass(frozen=True)
class UpdateLine:
    """A line of the update in one spelling: the chain, the numbers its symbols stand for, and why."""

    chain: EquationChain
    values: dict[sp.Symbol, float]
    why: str
    check: str  # derive check's name of the quantity, "" for one it does not know (m̂)


@dataclass(frozen=True)
class Update:
    """One parameter's update by the spec's optimiser: the rule and (with numbers) the first steps."""

    optimizer: Optimizer
    parameter: str
    latex_name: str  # the network's LaTeX spelling of the parameter
    steps: tuple[Step, ...]  # empty without numbers

    @property
    def terms(self) -> list[Term]:
        return self.optimizer.terms()

    # -- spelling ----------------------------------------------------------------

    def _symbol(self, target: sp.Symbol | str, step: int | str, latex: bool) -> sp.Symbol:
        """The quantity ``target`` (PARAMETER, a buffer's name or a shown symbol) at ``step`` (1, "t", "t-1")."""
        if target in (PARAMETER, DECAYED_PARAMETER):
            if latex:
                base = rf"{{{self.latex_name}}}"
                if target == DECAYED_PARAMETER:
                    base = rf"\widetilde{{{self.latex_name}}}"
                return sp.Symbol(rf"{base}^{{({step})}}", real=True)
            mark = "~" if target == DECAYED_PARAMETER else ""
            return sp.Symbol(f"{self.parameter}{mark}@{_step_text(step)}", real=True)
        base = (_LATEX if latex else _TEXT)[target]
        return sp.Symbol(f"{base}_{{{step}}}" if latex else f"{base}_{_step_text(step)}", real=True)

    def _renaming(self, step: int | str, latex: bool) -> tuple[dict[sp.Basic, sp.Basic], dict[str, sp.Symbol]]:
        """The rule's symbols as written at ``step`` before its first line, and the settings' symbols by key."""
        previous = "t-1" if step == "t" else int(step) - 1
        settings = _settings(latex)
        names: dict[sp.Basic, sp.Basic] = {
            PARAMETER: self._symbol(PARAMETER, previous, latex),
            GRADIENT: self._symbol(GRADIENT, step, latex),
            RATE: _rate(latex),
            STEP: sp.Symbol("t", positive=True, integer=True) if step == "t" else sp.Integer(step),
            **{SETTING[key]: symbol for key, symbol in settings.items()},
        }
        for state in self.optimizer.state:
            names[self.optimizer.symbol(state)] = self._symbol(state, previous, latex)
        return names, settings

    def _target(self, target: sp.Symbol, step: int | str, latex: bool) -> sp.Symbol:
        name = next((s for s in self.optimizer.state if self.optimizer.symbol(s) == target), None)
        return self._symbol(name if name is not None else target, step, latex)

    def _check_name(self, target: sp.Symbol, step: int) -> str:
        if target == PARAMETER:
            return f"{self.parameter}@{step}"
        name = next((s for s in self.optimizer.state if self.optimizer.symbol(s) == target), None)
        return f"{name}({self.parameter})@{step}" if name is not None else ""

    # -- the lines ---------------------------------------------------------------

    def setting_lines(self, latex: bool = False) -> list[UpdateLine]:
        """η and each setting the rule uses, with its value: η = 0.5, β1 = 0.9, …"""
        used = set().union(*(term.expr.free_symbols for term in self.terms))
        names, _ = self._renaming("t", latex)
        lines = [UpdateLine(EquationChain(names[RATE], (Value(self.optimizer.learning_rate),)), {}, "", "")]
        for key, symbol in SETTING.items():
            if symbol in used:
                value = float(getattr(self.optimizer.settings, key))
                lines.append(UpdateLine(EquationChain(names[symbol], (Value(value),)), {}, "", ""))
        return lines

    def rule(self, latex: bool = False) -> list[UpdateLine]:
        """The rule at step t, a line per quantity, in symbols."""
        names, _ = self._renaming("t", latex)
        lines = []
        for term in self.terms:
            lhs = self._target(term.target, "t", latex)
            lines.append(UpdateLine(EquationChain(lhs, (Formula(term.expr.xreplace(names)),)), {}, term.why, ""))
            names[term.target] = lhs
        return lines

    def gradient_line(self, step: Step, latex: bool = False) -> UpdateLine:
        """g_t = its value (the derivation's, at the parameters before the step)."""
        g = self._symbol(GRADIENT, step.t, latex)
        return UpdateLine(EquationChain(g, (Value(step.before[GRADIENT]),)), {}, "gradient", "")

    def step_lines(self, step: Step, latex: bool = False) -> list[UpdateLine]:
        """Each line of the rule at ``step.t``: symbols, then numbers, then the value."""
        names, settings = self._renaming(step.t, latex)
        values = {symbol: float(getattr(self.optimizer.settings, key)) for key, symbol in settings.items()}
        values[names[RATE]] = float(self.optimizer.learning_rate)
        for symbol, value in step.before.items():
            values[names[symbol]] = value
        lines = []
        for term in self.terms:
            lhs = self._target(term.target, step.t, latex)
            expr = term.expr.xreplace(names)
            values[lhs] = step.after[term.target]
            chain = EquationChain(lhs, (Formula(expr), Substituted(expr), Value(step.after[term.target])))
            lines.append(UpdateLine(chain, dict(values), term.why, self._check_name(term.target, step.t)))
            names[term.target] = lhs
        return lines

    # -- printed -----------------------------------------------------------------

    def text(self, digits: int = DEFAULT_DIGITS) -> str:
        """What ``derive grad`` prints after the derivation."""
        opt = self.optimizer
        out = [
            f"update of {self.parameter} by {opt.describe()}, η = {opt.learning_rate:g}: "
            f"the rule at step t = 1, 2, … ({self.parameter}@t is {self.parameter} after t steps)"
        ]
        for line in self.rule():
            out.append("  " + " = ".join(_text_printer(None, digits, line.chain).sides(line.chain)))
            out.append(f"      why: {WHY[line.why]}")
        for step in self.steps:
            before = "the gradient derived above" if step.t == 1 else f"∂E/∂{self.parameter} after step {step.t - 1}"
            start = "; every buffer starts at 0" if step.t == 1 and opt.state else ""
            out.append(f"step {step.t} (t = {step.t}): g_{step.t} is {before}{start}")
            shown = [self.gradient_line(step), *self.step_lines(step)]
            for line in shown:
                out.append("  " + " = ".join(_text_printer(line.values, digits, line.chain).sides(line.chain)))
        if self.steps:
            names = ", ".join(c for c in (line.check for line in self.step_lines(self.steps[0])) if c)
            out.append(f"derive check names them so: {names} (and @2 after two steps)")
        return "\n".join(out) + "\n"

    def latex_lines(self, digits: int = DEFAULT_DIGITS) -> list[str]:
        """Every line in LaTeX (``lhs &= side = …``): the rule, then each step's."""
        rows = []
        for line in self.rule(latex=True):
            rows.append(_latex_row(line, digits))
        for step in self.steps:
            for line in (self.gradient_line(step, latex=True), *self.step_lines(step, latex=True)):
                rows.append(_latex_row(line, digits))
        return rows

    def latex(self, digits: int = DEFAULT_DIGITS) -> str:
        """An ``align*`` of :meth:`latex_lines` (``derive grad --format latex`` adds it after the derivation)."""
        return "\\begin{align*}\n" + " \\\\\n".join(self.latex_lines(digits)) + "\n\\end{align*}\n"

    def to_dict(self, digits: int = DEFAULT_DIGITS) -> dict[str, Any]:
        """The JSON of ``derive grad --format json``'s ``update``."""
        opt = self.optimizer
        settings = {key: float(getattr(opt.settings, key)) for key in SETTING if key in _relevant(opt)}
        if opt.name == "sgd" and opt.settings.nesterov:
            settings["nesterov"] = True
        rule = [
            {
                "quantity": line.chain.lhs.name,  # type: ignore[union-attr]
                "expression": " = ".join(_text_printer(None, digits, line.chain).sides(line.chain)[1:]),
                "latex": _latex_row(latex, digits).replace("&", ""),
                "why": WHY[line.why],
            }
            for line, latex in zip(self.rule(), self.rule(latex=True))
        ]
        steps = []
        for step in self.steps:
            lines = []
            text_lines = [self.gradient_line(step), *self.step_lines(step)]
            latex_lines = [self.gradient_line(step, True), *self.step_lines(step, True)]
            for line, latex in zip(text_lines, latex_lines):
                sides = _text_printer(line.values, digits, line.chain).sides(line.chain)
                entry: dict[str, Any] = {
                    "quantity": sides[0],
                    "expression": sides[1] if len(sides) > 2 else None,
                    "numbers": sides[2] if len(sides) > 3 else None,
                    "value": line.chain.value,
                    "latex": _latex_row(latex, digits).replace("&", ""),
                }
                if line.check:
                    entry["check"] = line.check
                if line.why != "gradient":
                    entry["why"] = WHY[line.why]
                lines.append(entry)
            steps.append({"step": step.t, "lines": lines})
        return {
            "optimizer": opt.name,
            "description": opt.describe(),
            "learning_rate": opt.learning_rate,
            "settings": settings,
            "parameter": self.parameter,
            "rule": rule,
            "steps": steps,
        }


class _RuleOrder:
    """Text in the order a textbook writes the rule: β1*m_(t-1) + (1 - β1)*g_t, w5@(t-1) - η*m̂_t/(…).

    In a sum the gradient's term comes after the running state's, a lone setting (ε) last and a subtracted
    step after the rest; in a product the settings come first. Keys are the symbols, so the numbers keep
    the order of the symbols they replace.
    """

    settings: frozenset[sp.Symbol] = frozenset()
    gradients: frozenset[sp.Symbol] = frozenset()

    def _as_ordered_terms(self, expr: sp.Expr, order: str | None = None) -> list[sp.Basic]:
        def key(term: sp.Basic) -> tuple[bool, bool, bool]:
            negative = term.could_extract_minus_sign()
            return (
                negative,
                bool(term.free_symbols) and term.free_symbols <= self.settings,
                bool(term.free_symbols & self.gradients),
            )

        return sorted(sp.Add.make_args(expr), key=key)

    def _print_Mul(self, expr: sp.Mul) -> str:
        def key(factor: sp.Basic) -> bool:
            return not (factor.free_symbols and factor.free_symbols <= self.settings)

        coeff, rest = expr.as_coeff_Mul()
        factors = sorted(sp.Mul.make_args(rest), key=key)
        if coeff != 1:
            factors.insert(0, coeff)
        return str(super()._print_Mul(sp.Mul(*factors, evaluate=False)))  # type: ignore[misc]


class _RuleText(_RuleOrder, StrPrinter):
    pass


class _RuleValues(_RuleOrder, pr.TextValuePrinter):
    pass


class _RuleChainPrinter(TextChainPrinter):
    """:class:`TextChainPrinter` with the rule's order of terms."""

    def __init__(self, values: Mapping[sp.Symbol, float] | None, digits: int, roles: tuple[frozenset, frozenset]):
        super().__init__(values, digits)
        self.roles = roles

    def _ordered(self, printer: _RuleOrder) -> _RuleOrder:
        printer.settings, printer.gradients = self.roles
        printer._settings["order"] = "none"  # type: ignore[attr-defined]
        return printer

    def formula(self, expr: sp.Basic) -> str:
        return str(self._ordered(_RuleText()).doprint(expr))  # type: ignore[attr-defined]

    def substituted(self, expr: sp.Basic) -> str:
        return str(self._ordered(_RuleValues(self.point, self.digits)).doprint(expr))  # type: ignore[attr-defined]


def _settings(latex: bool) -> dict[str, sp.Symbol]:
    """The settings' symbols as a spelling writes them, by key."""
    return {key: sp.Symbol((_SETTING_LATEX if latex else _SETTING_TEXT)[key], positive=True) for key in SETTING}


def _rate(latex: bool) -> sp.Symbol:
    return sp.Symbol(r"\eta" if latex else "η", positive=True)


def _text_printer(values: Mapping[sp.Symbol, float] | None, digits: int, chain: EquationChain) -> TextChainPrinter:
    """The text printer of a line, ordering its terms as the rule is read."""
    symbols = set().union(*(side.expr.free_symbols for side in chain.sides if isinstance(side, Formula)))
    gradients = frozenset(x for x in symbols if x.name.startswith(("g_", "g̃_")))
    return _RuleChainPrinter(values, digits, (frozenset([*_settings(False).values(), _rate(False)]), gradients))


def _relevant(opt: Optimizer) -> tuple[str, ...]:
    from ..spec.reading import OPTIMIZERS

    return OPTIMIZERS[opt.name]


def _step_text(step: int | str) -> str:
    return f"({step})" if isinstance(step, str) and "-" in step else str(step)


def _latex_row(line: UpdateLine, digits: int) -> str:
    sides = LatexChainPrinter({}, line.values, digits).sides(line.chain)
    return sides[0] + " &= " + " = ".join(sides[1:])


# -- the numbers ---------------------------------------------------------------------


def update_of(model: Worked, name: str, first_gradient: float | None = None, steps: int = STEPS) -> Update | None:
    """``name``'s update by the spec's optimiser over ``steps`` steps; None for a quantity the optimiser does not
    move (an input, a net, a bias kept out of it) or an optimiser that is plain gradient descent.

    Without the spec's numbers the update holds the rule alone. ``first_gradient`` is the gradient already
    derived for the first step (``derive grad`` has it); the later ones are derived at the engine's parameters.
    """
    optimizer = Optimizer.of(model.spec)
    network = model.network
    info = network.info.get(name)
    if info is None or info.kind not in ("weight", "bias") or not optimizer.settings_beyond_sgd:
        return None
    if not optimizer.updates(info.kind == "bias"):
        return None
    latex_name = network.latex[network.symbols[name]]
    if not model.has_numbers:
        return Update(optimizer, name, latex_name, ())
    return Update(optimizer, name, latex_name, tuple(_steps(model, optimizer, name, first_gradient, steps)))


def _steps(model: Worked, optimizer: Optimizer, name: str, first: float | None, count: int) -> list[Step]:
    network = model.network
    symbol = network.symbols[name]
    engine = model.compiled()
    settings = optimizer.setting_values()
    found: list[Step] = []
    for t in range(1, count + 1):
        gradient = first if t == 1 and first is not None else _gradient(model, symbol, engine.points())
        before: dict[sp.Symbol, float] = {PARAMETER: engine.parameter_values()[name], GRADIENT: gradient}
        for state in optimizer.state:
            before[optimizer.symbol(state)] = engine.state_values(state).get(name, 0.0) if t > 1 else 0.0
        engine.train(1)
        kept = {PARAMETER: engine.parameter_values()[name]}
        for state in optimizer.state:
            kept[optimizer.symbol(state)] = engine.state_values(state)[name]
        # a line's target is the engine's number where it keeps one; else the line's formula at the numbers so far
        values: dict[sp.Symbol, Any] = {**before, **settings, STEP: t}
        after: dict[sp.Symbol, float] = {}
        for term in optimizer.terms():
            if term.target in kept:
                value = kept[term.target]
            else:
                computed = evaluate(term.expr, values)
                value = float("nan") if computed is None else float(computed)  # a diverged step shows as nan
            after[term.target] = value
            values[term.target] = value
        found.append(Step(t, before, after))
    return found


def _gradient(model: Worked, symbol: sp.Symbol, points: Sequence[Mapping[sp.Symbol, float]]) -> float:
    """∂E/∂symbol at the engine's points, as the derivation gives it (the batch's mean or sum)."""
    network = model.network
    if len(points) > 1:
        value = derive_batch(network, symbol, points, model.spec.loss.reduction).value
    else:
        value = derive(network, symbol, points[0]).value
    result = as_float(value)
    return float("nan") if result is None else result
