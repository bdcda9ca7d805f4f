"""Claims judged exactly: the value at the spec's decimals, to as many digits as the claim needs.

A claim ``c`` that shows its last digit in the place ``u`` (one unit there) is

- *exact* when the value is ``c`` itself (0.4 for a weight of exactly 0.4);
- *rounded* when the value lies within ``u/2`` of it (a value exactly halfway rounds either way);
- *truncated* when it lies in ``[c, c + u)`` (``(c − u, c]`` for a negative claim, ``(−u, u)`` for 0).

The value comes from the exact pass (:class:`derive.core.chain.ExactPoint`) at the spec's numbers as
written (0.05 is 1/20). It is computed at ``P`` digits and at ``P + GUARD`` digits: their difference
bounds its error, and the verdict is taken only when no boundary of those intervals lies within that
bound of the value. Otherwise ``P`` doubles, up to :data:`MAX_PRECISION` digits; a value that still
sits on a boundary there *is* the boundary (a decimal of at most 51 digits, which a sum of the spec's
decimals can be exactly). Nothing is judged with a relative slack.

Quantities after N updates (``X@N``) come from the generated module's float64 training first: the
quantity is evaluated exactly at the parameters that training reached (its own float64 evaluation
may cancel: E near a minimum is a difference of two nearly equal numbers, squared), and its error is
the parameters' float64 trust (:attr:`~derive.core.policy.NumberPolicy.noise`, relative) carried to it
(:meth:`Precise.drift`). When the claim shows more than :data:`FLOAT_DIGITS` digits, or a boundary lies
within that error of the value, the N updates are replayed at high precision from the spec's decimals,
within :data:`REPLAY_BUDGET` steps × parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from enum import Enum
from typing import TYPE_CHECKING

from ..errors import DeriveError

if TYPE_CHECKING:
    import sympy as sp

    from ..core.network import Network
    from ..core.worked import Worked
    from .quantities import Quantity

GUARD = 15  # digits between the two evaluations whose difference bounds the error
MAX_PRECISION = 480  # digits at most: a value still on a boundary there is taken to be on it
FLOAT_DIGITS = 12  # significant digits a float64 value after N updates can judge (noise 1e-12)
REPLAY_BUDGET = 4_000  # steps × parameters replayed at high precision for one check (measured ≈ 2 ms each: 8 s)
_PRECISION = 2 * MAX_PRECISION + 40  # decimal arithmetic of the verdicts: every digit of a claim and a value


class Match(Enum):
    """How a claim relates to the value (see the module's docstring)."""

    EXACT = "exact"
    ROUNDED = "rounded"
    TRUNCATED = "truncated"
    NONE = "none"


def unit(claimed: Decimal) -> Decimal:
    """One unit in the last digit shown: 1e-8 for 0.75136079, 1e-10 for 3.51085e-5."""
    exponent = claimed.as_tuple().exponent
    assert isinstance(exponent, int)  # claims are finite
    return Decimal(1).scaleb(exponent)


def boundaries(claimed: Decimal) -> tuple[Decimal, ...]:
    """Where the verdict may change: the ends of the rounded and truncated intervals, and the claim."""
    u = unit(claimed)
    with localcontext(prec=_PRECISION):
        if claimed == 0:
            return (-u, -u / 2, claimed, u / 2, u)
        far = claimed - u if claimed.is_signed() else claimed + u
        return (claimed - u / 2, claimed, claimed + u / 2, far)


def match(claimed: Decimal, value: Decimal) -> Match:
    """The claim against a value known exactly."""
    u = unit(claimed)
    with localcontext(prec=_PRECISION):
        if value == claimed:
            return Match.EXACT
        if abs(value - claimed) <= u / 2:
            return Match.ROUNDED
        if claimed == 0:
            truncated = abs(value) < u
        elif claimed.is_signed():
            truncated = claimed - u < value <= claimed
        else:
            truncated = claimed <= value < claimed + u
    return Match.TRUNCATED if truncated else Match.NONE


def decide(claimed: Decimal, value: Decimal, error: Decimal, exact: bool = True) -> Match | None:
    """The claim against a value known within ±``error``; None when a boundary lies within that.

    ``exact`` False: whether the value is the claim itself does not matter (it would be ok either way, as
    exact or as rounded); the claim is then no boundary, and a value within ``error`` of it is rounded.
    """
    if error == 0:
        return match(claimed, value)
    with localcontext(prec=_PRECISION):
        if any(abs(b - value) <= error for b in boundaries(claimed) if exact or b != claimed):
            return None
    verdict = match(claimed, value)
    return Match.ROUNDED if verdict is Match.EXACT and not exact else verdict


def on_boundary(claimed: Decimal, value: Decimal) -> Decimal:
    """The boundary nearest the value: what a value that stays on one at every precision is."""
    with localcontext(prec=_PRECISION):
        return min(boundaries(claimed), key=lambda b: abs(b - value))


def to_decimal(value: sp.Float | float) -> Decimal:
    """A sympy Float's (or a float's) exact binary value as a Decimal."""
    import sympy as sp

    if isinstance(value, float):
        return Decimal(value)
    sign, mantissa, exponent, _ = sp.Float(value)._mpf_
    with localcontext(prec=_PRECISION):
        result = Decimal(int(mantissa)) * (Decimal(2) ** int(exponent))
    return -result if sign else result


@dataclass(frozen=True)
class Judged:
    """A claim's verdict: how it matches, and the value to as many digits as that took."""

    match: Match
    value: Decimal  # the value as computed at the precision that decided (exactly the boundary on a boundary)
    digits: int  # the precision that decided (0: a float64 value, or a number the spec gives)


def judge(claimed: Decimal, evaluate: Callable[[int], Decimal], start: int) -> Judged:
    """Judge a claim against a value computed at ``digits`` digits by ``evaluate(digits)``."""
    digits = start
    while True:
        coarse, fine = evaluate(digits), evaluate(digits + GUARD)
        with localcontext(prec=_PRECISION):
            error = 10 * abs(fine - coarse) + abs(fine) * Decimal(1).scaleb(-(digits + GUARD - 2))
        verdict = decide(claimed, fine, error)
        if verdict is not None:
            return Judged(verdict, fine, digits + GUARD)
        if digits * 2 > MAX_PRECISION:
            boundary = on_boundary(claimed, fine)
            return Judged(match(claimed, boundary), boundary, digits + GUARD)
        digits *= 2


def digits_needed(claimed: Decimal) -> int:
    """The precision to start at: enough for the claim's last digit, relative to the claim's size."""
    from .quantities import significant_digits

    return significant_digits(claimed) + 10


# --------------------------------------------------------------------------
# values at high precision


class Precise:
    """Values of claimed quantities from the spec's decimals at any precision, and after N updates replayed."""

    def __init__(self, model: Worked) -> None:
        self.model = model
        self.network = model.network
        # a batch through max pools: each sample's network routes by its own winners (the model knows them)
        sample_networks = getattr(model, "_sample_networks", None)
        self.networks: list[Network] | None = sample_networks() if sample_networks is not None else None
        self.reduction = model.spec.loss.reduction
        self._derivations: dict[tuple[int, sp.Symbol], sp.Expr] = {}
        self._replayed: dict[int, tuple[list[dict[sp.Symbol, sp.Float]], dict[str, dict[str, sp.Float]]]] = {}
        self._parameters: Mapping[sp.Symbol, object] | None = None  # set by at(): parameters instead of a replay

    def rerouted(self, networks: list[Network]) -> Precise:
        """These values with each sample's max pools routed by ``networks`` (float64's winners after N updates,
        when every window was clear: see :mod:`derive.check.pools`)."""
        copy = Precise.__new__(Precise)
        copy.__dict__.update(self.__dict__)
        copy.network, copy.networks = networks[0], list(networks)
        copy._derivations, copy._replayed = {}, {}
        return copy

    def given(self, q: Quantity) -> Decimal | None:
        """The exact decimal of a number the spec gives (an input, a target; a parameter the steps leave alone)."""
        from ..core.optimizer import Optimizer
        from ..core.policy import written, written_numbers
        from .quantities import Kind

        if q.kind is not Kind.VALUE or q.of == "E":
            return None
        kind = self.network.info[q.of].kind
        if kind in ("input", "target") or (kind in ("weight", "bias") and q.step == 0):
            point = self.model.points
            assert point is not None
            value = point[max(q.sample, 1) - 1][self.network.symbols[q.of]]
            as_written = written_numbers(self.model.spec).get(q.of)  # written with more digits than a float keeps
            return written(as_written if as_written is not None and as_written == value else value)
        if kind in ("weight", "bias") and not Optimizer.of(self.model.spec).updates(kind == "bias"):
            return self.given(replace(q, step=0))
        return None

    def steps_cost(self, step: int) -> int:
        return step * len(self.network.parameters)

    def value(self, q: Quantity, digits: int) -> Decimal:
        """The quantity to ``digits`` significant digits (and a few more)."""
        import sympy as sp

        from .quantities import Kind

        if q.sample == 0 and self.model.samples > 1 and _reduced(q):
            parts = [self.value(replace(q, sample=n), digits) for n in range(1, self.model.samples + 1)]
            with localcontext(prec=_PRECISION):
                total = sum(parts, Decimal(0))
                return total / len(parts) if self.reduction == "mean" else total
        if q.kind is Kind.STATE:
            if q.step == 0:
                return Decimal(0)
            return to_decimal(self._replay(q.step, digits)[1][q.of][q.wrt])
        point = self._point(q.step, max(q.sample, 1) - 1, digits)
        result = self._at_point(q, point, digits)
        if result is None or not result.is_finite:
            raise DeriveError(f"{q.name} is not a finite number here", where=self.model.spec.source)
        return to_decimal(sp.Float(result, digits))

    def _point(self, step: int, sample: int, digits: int) -> Mapping[sp.Symbol, object]:
        from ..core.chain import ExactPoint

        points = self.model.points
        assert points is not None
        start = points[sample]
        extra = max(0, _saturation_digits(start.largest_net()))
        net = self.networks[sample] if self.networks else self.network
        if step == 0:
            return ExactPoint(net, start, digits + extra)
        if self._parameters is not None:  # the float64 training's parameters (see at())
            given = {**self._given_numbers(sample, digits), **self._parameters}
            return ExactPoint(net, given, digits + extra)
        given = self._replay(step, digits)[0][sample]
        return ExactPoint(net, given, digits + extra)

    def at(self, q: Quantity, digits: int, parameters: Mapping[sp.Symbol, float | sp.Float]) -> Decimal:
        """The quantity (after ``q.step`` updates) evaluated exactly at ``parameters`` instead of replayed ones:
        the float64 training's, each float read as its shortest decimal (as the spec's numbers are), to ``digits``
        digits."""
        from .quantities import Kind

        assert q.kind is not Kind.STATE  # an optimiser's buffer is the run's, not a function of the parameters
        saved, self._parameters = self._parameters, parameters
        try:
            return self.value(q, digits)
        finally:
            self._parameters = saved

    def drift(
        self, q: Quantity, digits: int, parameters: Mapping[sp.Symbol, float], value: Decimal, trials: int = 3
    ) -> Decimal:
        """How far the quantity at ``parameters`` may be from its exact value after the same updates, when each
        parameter is within float64's trust (``POLICY.noise``, relative) of its exact value: the largest change of
        the quantity over ``trials`` shifts of every parameter by that much (signs drawn from a fixed seed), times 3,
        with the evaluation's own error."""
        import random

        import sympy as sp

        from ..core.policy import POLICY

        rng = random.Random(0)
        trust = sp.Float(repr(POLICY.noise), digits + GUARD)
        worst = Decimal(0)
        for _ in range(trials):
            shifted = {
                p: sp.Float(v, digits + GUARD) * (1 + trust * rng.choice((-1, 1))) for p, v in parameters.items()
            }
            with localcontext(prec=_PRECISION):
                worst = max(worst, abs(self.at(q, digits, shifted) - value))
        with localcontext(prec=_PRECISION):
            return 3 * worst + abs(value) * Decimal(1).scaleb(-(digits - 2))

    def _given_numbers(self, sample: int, digits: int) -> dict[sp.Symbol, sp.Float]:
        """A sample's inputs and targets as the spec writes them, at ``digits`` digits."""
        from ..core.policy import decimal_float

        net = self.network
        points = self.model.points
        assert points is not None
        point = points[sample]
        given = [*net.input_layer.outs, *(n.target for n in net.output_layer.neurons if n.target is not None)]
        return {s: decimal_float(point[s], digits) for s in given if s in point}

    def _at_point(self, q: Quantity, point: Mapping[sp.Symbol, object], digits: int) -> sp.Expr | None:
        from ..core.chain import local_factor
        from ..core.network import LOSS_SYMBOL
        from .quantities import Kind

        net = getattr(point, "net", self.network)  # the sample's own (max pools route by its numbers)
        if q.kind is Kind.VALUE:
            symbol = LOSS_SYMBOL if q.of == "E" else net.symbols[q.of]
            return _exact(symbol, point, digits)
        if q.kind is Kind.ERROR:
            return _at(net.output_errors[_output(net, q.of).out], point, digits)
        if q.kind is Kind.DELTA:
            neuron = _neuron(net, q.of)
            assert neuron.delta is not None
            return _exact(neuron.delta, point, digits)
        if q.kind is Kind.GRAD:
            return _at(self._gradient(net.symbols[q.wrt], net), point, digits)
        if q.kind is Kind.PARTIAL:
            return self._partial(q.of, q.wrt, point, digits, net)
        factor = local_factor(net, net.symbols[q.of], net.symbols[q.wrt])
        assert factor is not None
        return _at(factor, point, digits)

    def _gradient(self, symbol: sp.Symbol, net: Network | None = None) -> sp.Expr:
        """∂E/∂symbol in δ form (Σ δ·∂net/∂symbol), derived once for each network."""
        from ..core.chain import derive

        net = net or self.network
        key = (id(net), symbol)
        if key not in self._derivations:
            self._derivations[key] = derive(net, symbol).delta_expression
        return self._derivations[key]

    def _partial(
        self, label: str, wrt: str, point: Mapping[sp.Symbol, object], digits: int, net: Network
    ) -> sp.Expr | None:
        """dE_k/dX: output k's error alone through BP1 and BP2 (as :meth:`_Values._partial`), exactly."""
        out_k = _output(net, label).out
        dE_k = net.dE_dout[out_k]
        symbol = net.symbols[wrt]
        if net.info[wrt].kind == "out" and net.info[wrt].layer == len(net.layers) - 1:
            import sympy as sp

            return _at(dE_k, point, digits) if symbol == out_k else sp.Float(0)
        alone: dict[sp.Symbol, object] = _Overlay(point)
        for n in net.output_layer.neurons:
            alone[n.delta] = _at(dE_k * net.dout_dnet(out_k, n.net), point, digits)
        for layer in reversed(net.layers[1:-1]):
            for h in layer.neurons:
                alone[h.delta] = _at(net.delta_definitions[h.delta], alone, digits)
        return _at(self._gradient(symbol, net), alone, digits)

    # -- N updates replayed ------------------------------------------------------

    def require_replay(self, steps: int, decides: int | None = None) -> None:
        """Refuse (a DeriveError) a replay of ``steps`` updates beyond the budget, or through max pools.

        ``decides``: the significant digits float64's training decides here, when a claim of at most
        :data:`FLOAT_DIGITS` digits sits nearer a boundary than its error (None: a longer claim).
        """
        cost = self.steps_cost(steps)
        if not self.network.has_max_pools and cost <= REPLAY_BUDGET:
            return
        if decides is None:
            why = f"a claim after {steps:,} updates with more digits than float64 holds"
            hint = f"claim at most {FLOAT_DIGITS} significant digits after "
        else:
            why = (
                f"a claim after {steps:,} updates that float64's training cannot decide (a rounding boundary of "
                "the claim lies within the value's error there)"
            )
            hint = f"claim at most {decides} significant digit{'s' if decides != 1 else ''} after "
        if self.network.has_max_pools:
            raise DeriveError(
                f"{why} needs the updates replayed at high precision, and a max pool routes by each step's own "
                "numbers (not replayed)",
                where=self.model.spec.source,
                hint=hint + "updates of a max-pool network",
            )
        raise DeriveError(
            f"{why} needs the updates replayed at high precision: {steps:,} steps × "
            f"{len(self.network.parameters)} parameters = {cost:,}, beyond the budget of {REPLAY_BUDGET:,} "
            "(high-precision replay budget)",
            where=self.model.spec.source,
            hint=hint + "that many updates",
        )

    def _replay(
        self, steps: int, digits: int
    ) -> tuple[list[dict[sp.Symbol, sp.Float]], dict[str, dict[str, sp.Float]]]:
        """Each sample's given numbers after ``steps`` updates at ``digits`` digits, and the optimiser's buffers."""
        import sympy as sp

        from ..core.optimizer import GRADIENT, PARAMETER, RATE, STEP, Optimizer
        from ..core.policy import decimal_constants, decimal_float, written

        key = steps * 10_000 + digits
        if key in self._replayed:
            return self._replayed[key]
        self.require_replay(steps)
        net = self.network
        points = self.model.points
        assert points is not None
        optimizer = Optimizer.of(self.model.spec)
        rule = [(a.target, decimal_constants(a.expr)) for a in optimizer.rule()]
        rate = sp.Rational(str(written(optimizer.learning_rate)))
        parameters = net.parameters
        given_symbols = [*net.input_layer.outs, *(n.target for n in net.output_layer.neurons if n.target is not None)]
        samples = [{s: decimal_float(p[s], digits) for s in given_symbols if s in p} for p in points]
        values = {p: decimal_float(points[0][p], digits) for p in parameters}
        state = {name: {p.name: sp.Float(0, digits) for p in parameters} for name in optimizer.state}
        extra = max(0, max(_saturation_digits(p.largest_net()) for p in points))
        from ..core.chain import ExactPoint

        for t in range(1, steps + 1):
            exact = [ExactPoint(net, {**s, **values}, digits + extra) for s in samples]
            updated = {}
            for p in parameters:
                is_bias = net.info[p.name].kind == "bias"
                if not optimizer.updates(is_bias):
                    updated[p] = values[p]
                    continue
                per = [_at(self._gradient(p), e, digits) for e in exact]
                if any(g is None for g in per):
                    raise DeriveError(f"∂E/∂{p.name} is not a finite number after {t - 1} updates", where="")
                gradient = sp.Add(*per)
                if self.reduction == "mean":
                    gradient = gradient / len(per)
                env: dict[sp.Symbol, sp.Expr] = {
                    PARAMETER: values[p],
                    GRADIENT: gradient,
                    RATE: rate,
                    STEP: sp.Integer(t),
                    **{optimizer.symbol(name): state[name][p.name] for name in optimizer.state},
                }
                for target, expr in rule:
                    env[target] = sp.Float(expr.xreplace(env).evalf(digits), digits)
                updated[p] = env[PARAMETER]
                for name in optimizer.state:
                    state[name][p.name] = env[optimizer.symbol(name)]
            values = updated
        result = ([{**s, **values} for s in samples], state)
        self._replayed[key] = result
        return result


class _Overlay(dict):
    """A point with some values set over it (a dict over a lazy mapping)."""

    def __init__(self, under: Mapping[sp.Symbol, object]) -> None:
        super().__init__()
        self.under = under

    def __missing__(self, key: sp.Symbol) -> object:
        return self.under[key]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.under


def _saturation_digits(largest_net: float) -> int:
    """Digits beyond the claim's that 1 − σ(net) needs at the largest net (see NumberPolicy.digits_for)."""
    from ..core.policy import POLICY

    return POLICY.digits_for(largest_net) - POLICY.exact_digits


def _exact(symbol: sp.Symbol, point: Mapping[sp.Symbol, object], digits: int) -> sp.Expr | None:
    try:
        value = point[symbol]
    except KeyError:
        return None
    import sympy as sp

    return sp.Float(value, digits)


def _at(expr: sp.Expr, point: Mapping[sp.Symbol, object], digits: int) -> sp.Expr | None:
    """expr at the point's numbers, to ``digits`` digits (None where a number is missing or it is no number)."""
    import sympy as sp

    from ..core.chain import erfc_form
    from ..core.policy import decimal_constants

    values = {}
    for s in expr.free_symbols:
        try:
            values[s] = point[s]
        except KeyError:
            return None
        if values[s] is None:
            return None
    value = decimal_constants(erfc_form(expr)).xreplace(values)
    if not value.is_Number:
        value = value.evalf(digits)
    if not value.is_Number or value in (sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    return sp.Float(value, digits)


def _reduced(q: Quantity) -> bool:
    from .quantities import Kind

    return (q.kind is Kind.VALUE and q.of == "E") or q.kind in (Kind.ERROR, Kind.GRAD, Kind.PARTIAL)


def _output(net: object, label: str):  # type: ignore[no-untyped-def]
    return next(n for n in net.output_layer.neurons if n.label == label)  # type: ignore[attr-defined]


def _neuron(net: object, label: str):  # type: ignore[no-untyped-def]
    return next(n for layer in net.layers[1:] for n in layer.neurons if n.label == label)  # type: ignore[attr-defined]
