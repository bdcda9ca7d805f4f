"""The optimisers' updates, in one home: each rule is written once, as sympy, and read three ways.

- the generated module's ``update`` (called by ``train_step``, ``fit`` and derive's own training: ``derive
  train``, ``check X@N``, the lecture's run) is the rule printed as NumPy by the code generator;
- ``derive check`` explains a wrong ``w1@3`` from it (plain gradient descent), and reads the state after
  N steps under torch's names (``exp_avg(w1)@3``);
- the settings and their semantics are torch.optim's: SGD's momentum buffer (dampening 0) and Nesterov's
  look-ahead, RMSprop's square average, Adam's bias correction, AdamW's decoupled weight decay.

A rule is a list of assignments made in order for each parameter array, as the generated code makes them:
the gradient (with weight decay), each state, then the parameter. A symbol on the right stands for the
value it has at that point (a state's before the step until it is assigned).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..spec.reading import Spec, TrainingSpec

PARAMETER = sp.Symbol("p", real=True)
GRADIENT = sp.Symbol("g", real=True)
RATE = sp.Symbol("eta", positive=True)
STEP = sp.Symbol("t", positive=True, integer=True)  # this step's number, from 1


@dataclass(frozen=True)
class Assignment:
    """``target = expr``: the target is the parameter (PARAMETER), the gradient (GRADIENT) or a state symbol."""

    target: sp.Symbol
    expr: sp.Expr


# the settings as a person reads the rule: η is RATE; each symbol's value is the optimiser's (Optimizer.settings)
SETTINGS = ("momentum", "weight_decay", "alpha", "beta1", "beta2", "eps")
SETTING = {key: sp.Symbol(key, positive=True) for key in SETTINGS}
# quantities of a step that no buffer keeps, named so the rule can be read a line at a time
DECAYED_GRADIENT = sp.Symbol("decayed_gradient", real=True)  # g + λ·p
DECAYED_PARAMETER = sp.Symbol("decayed_parameter", real=True)  # AdamW's p·(1 − η·λ), before the step
EXP_AVG_HAT = sp.Symbol("exp_avg_hat", real=True)  # Adam's bias-corrected averages
EXP_AVG_SQ_HAT = sp.Symbol("exp_avg_sq_hat", real=True)


@dataclass(frozen=True)
class Term:
    """One line of the rule as a person reads it: ``target = expr``, and ``why`` (a word key: ``why_<why>``).

    The symbols are :meth:`Optimizer.rule`'s, the settings are SETTING's symbols, and a line may name a
    quantity no buffer keeps (DECAYED_GRADIENT, EXP_AVG_HAT, …); a symbol on the right stands for the value
    it has at that point, as in the rule.
    """

    target: sp.Symbol
    expr: sp.Expr
    why: str


@dataclass(frozen=True)
class Optimizer:
    """An optimiser with its settings (a spec's [training]); ``state`` are torch's names for its buffers."""

    name: str
    learning_rate: float
    update_biases: bool
    settings: TrainingSpec

    @classmethod
    def of(cls, spec: Spec) -> Optimizer:
        """The spec's [training] optimiser."""
        t = spec.training
        return cls(t.optimizer, t.learning_rate, t.update_biases, t)

    @property
    def state(self) -> tuple[str, ...]:
        """The names of the buffers it keeps per parameter, as torch.optim names them."""
        t, name = self.settings, self.name
        if name == "sgd":
            return ("momentum_buffer",) if t.momentum > 0 else ()
        if name == "rmsprop":
            return ("square_avg", "momentum_buffer") if t.momentum > 0 else ("square_avg",)
        return ("exp_avg", "exp_avg_sq")

    @property
    def stateful(self) -> bool:
        return bool(self.state)

    @property
    def settings_beyond_sgd(self) -> bool:
        """Anything but p ← p − η·∂E/∂p: another optimiser, momentum or weight decay."""
        return self.name != "sgd" or self.stateful or bool(self.settings.weight_decay)

    def symbol(self, state: str) -> sp.Symbol:
        return sp.Symbol(state, real=True)

    def updates(self, is_bias: bool) -> bool:
        """Whether the parameter moves at all (``update_biases = false`` keeps biases out of the optimiser)."""
        return self.update_biases or not is_bias

    def rule(self) -> list[Assignment]:
        """The assignments of one step, in order, in PARAMETER, GRADIENT, RATE, STEP and the state symbols."""
        t, p, g, lr = self.settings, PARAMETER, GRADIENT, RATE
        f = sp.Float
        steps: list[Assignment] = []
        decay = t.weight_decay
        if decay and self.name != "adamw":
            steps.append(Assignment(g, g + f(decay) * p))  # L2 weight decay, added to the gradient
        if self.name == "sgd":
            if t.momentum > 0:
                buf = self.symbol("momentum_buffer")
                # a running sum of gradients: torch's buffer starts at the first gradient, that is at 0 before it
                steps.append(Assignment(buf, f(t.momentum) * buf + g))
                steps.append(Assignment(g, g + f(t.momentum) * buf if t.nesterov else buf))
            steps.append(Assignment(p, p - lr * g))
        elif self.name == "rmsprop":
            avg = self.symbol("square_avg")
            steps.append(Assignment(avg, f(t.alpha) * avg + _one_minus(t.alpha) * g**2))
            scaled = g / (sp.sqrt(avg) + f(t.eps))  # the step is the gradient over its running root mean square
            if t.momentum > 0:
                buf = self.symbol("momentum_buffer")
                steps.append(Assignment(buf, f(t.momentum) * buf + scaled))
                steps.append(Assignment(p, p - lr * buf))
            else:
                steps.append(Assignment(p, p - lr * scaled))
        else:  # adam, adamw
            m, v = self.symbol("exp_avg"), self.symbol("exp_avg_sq")
            if self.name == "adamw" and decay:
                steps.append(Assignment(p, p * (1 - lr * f(decay))))  # decoupled decay, before the step
            b1, b2 = f(t.beta1), f(t.beta2)
            steps.append(Assignment(m, b1 * m + _one_minus(t.beta1) * g))
            steps.append(Assignment(v, b2 * v + _one_minus(t.beta2) * g**2))
            # bias correction: m and v start at 0, so early averages are too small by (1 − β^t)
            denominator = sp.sqrt(v) / sp.sqrt(1 - b2**STEP) + f(t.eps)
            steps.append(Assignment(p, p - lr / (1 - b1**STEP) * m / denominator))
        return steps

    def terms(self) -> list[Term]:
        """The rule as a textbook writes it, a line per quantity with why it is there: the same step as
        :meth:`rule` (which groups Adam's bias correction as torch computes it), with the settings as symbols
        (their values: :meth:`setting_values`) and Adam's m̂ and v̂ written out."""
        t, p, g, lr = self.settings, PARAMETER, GRADIENT, RATE
        k = SETTING
        lines: list[Term] = []
        if t.weight_decay and self.name != "adamw":
            lines.append(Term(DECAYED_GRADIENT, g + k["weight_decay"] * p, "weight_decay"))
            g = DECAYED_GRADIENT
        if self.name == "sgd":
            if t.momentum > 0:
                buf = self.symbol("momentum_buffer")
                lines.append(Term(buf, k["momentum"] * buf + g, "momentum_sum"))
                if t.nesterov:
                    lines.append(Term(p, p - lr * (g + k["momentum"] * buf), "nesterov_step"))
                else:
                    lines.append(Term(p, p - lr * buf, "momentum_step"))
            else:
                lines.append(Term(p, p - lr * g, "descent"))
        elif self.name == "rmsprop":
            avg = self.symbol("square_avg")
            lines.append(Term(avg, k["alpha"] * avg + (1 - k["alpha"]) * g**2, "square_avg"))
            scaled = g / (sp.sqrt(avg) + k["eps"])
            if t.momentum > 0:
                buf = self.symbol("momentum_buffer")
                lines.append(Term(buf, k["momentum"] * buf + scaled, "rms_momentum"))
                lines.append(Term(p, p - lr * buf, "momentum_step"))
            else:
                lines.append(Term(p, p - lr * scaled, "rms_step"))
        else:  # adam, adamw
            m, v = self.symbol("exp_avg"), self.symbol("exp_avg_sq")
            start = p
            if self.name == "adamw" and t.weight_decay:
                lines.append(Term(DECAYED_PARAMETER, p * (1 - lr * k["weight_decay"]), "decoupled_decay"))
                start = DECAYED_PARAMETER
            lines.append(Term(m, k["beta1"] * m + (1 - k["beta1"]) * g, "first_moment"))
            lines.append(Term(v, k["beta2"] * v + (1 - k["beta2"]) * g**2, "second_moment"))
            lines.append(Term(EXP_AVG_HAT, m / (1 - k["beta1"] ** STEP), "bias_correction"))
            lines.append(Term(EXP_AVG_SQ_HAT, v / (1 - k["beta2"] ** STEP), "bias_correction_sq"))
            lines.append(Term(p, start - lr * EXP_AVG_HAT / (sp.sqrt(EXP_AVG_SQ_HAT) + k["eps"]), "adaptive_step"))
        return lines

    def setting_values(self) -> dict[sp.Symbol, float]:
        """The value of each setting symbol :meth:`terms` uses, and η's."""
        values = {SETTING[key]: float(getattr(self.settings, key)) for key in SETTINGS}
        return {**values, RATE: float(self.learning_rate)}

    def update(self, parameter: sp.Expr, gradient: sp.Expr, is_bias: bool = False) -> sp.Expr | None:
        """The parameter after one step of a stateless optimiser, in the given expressions; None with state."""
        if not self.updates(is_bias):
            return parameter
        if self.stateful:
            return None
        value: dict[sp.Symbol, sp.Expr] = {PARAMETER: parameter, GRADIENT: gradient}
        for a in self.rule():
            value[a.target] = a.expr.xreplace({**value, RATE: sp.Float(self.learning_rate)})
        return value[PARAMETER]

    def describe(self) -> str:
        """The optimiser and its settings in a few words: "adam: betas (0.9, 0.999), eps 1e-08"."""
        t = self.settings
        settings = {
            "sgd": [f"momentum {t.momentum:g}"] * (t.momentum > 0) + ["Nesterov"] * t.nesterov,
            "rmsprop": [f"alpha {t.alpha:g}", f"eps {t.eps:g}"] + [f"momentum {t.momentum:g}"] * (t.momentum > 0),
            "adam": [f"betas ({t.beta1:g}, {t.beta2:g})", f"eps {t.eps:g}"],
            "adamw": [f"betas ({t.beta1:g}, {t.beta2:g})", f"eps {t.eps:g}"],
        }[self.name]
        if t.weight_decay:
            settings.append(f"weight decay {t.weight_decay:g}" + (", decoupled" if self.name == "adamw" else ""))
        name = "gradient descent" if self.name == "sgd" else self.name
        return name + (": " + ", ".join(settings) if settings else "")


def _one_minus(value: float) -> sp.Expr:
    """1 − value, kept as written (1 − 0.9, not 0.09999999999999998): the same float when it is computed."""
    return sp.Add(sp.S.One, -sp.Float(value), evaluate=False)
