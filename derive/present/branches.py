"""A formula with steps and kinks, read at a point: the branch that holds there, and why.

relu' is θ(z) and elu' is (1 − θ(z))·e^(z − max(0, z)) + θ(z): true everywhere, and
hard to read. At a point where z2_1 = −0.41 the factor *is* e^(z2_1), because
z2_1 ≤ 0; a reader should see that, with the condition that picks it.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

from ..core.chain import evaluate


def branch_at(expr: sp.Basic, point: Mapping[sp.Symbol, float]) -> tuple[sp.Basic, tuple[sp.Basic, ...]] | None:
    """(expr with every step, max, min, abs and sign of known arguments resolved, the conditions used), or None.

    Heaviside(u, 0) is 1 for u > 0 and 0 for u ≤ 0 (PyTorch's relu' at 0); max(0, u) is u or 0 on the same
    sides. None when the expression has no such piece, when it is a lone max, min or abs (relu: max(0, z)
    with numbers reads well), or when a piece's argument has no value at the point.
    """
    pieces = [e for e in sp.preorder_traversal(expr) if isinstance(e, (sp.Heaviside, sp.Max, sp.Min, sp.Abs, sp.sign))]
    if not pieces or (isinstance(expr, (sp.Max, sp.Min, sp.Abs)) and len(pieces) == 1):
        return None  # max(0, −0.49) = 0 reads well as it stands (relu itself)
    replacements: dict[sp.Basic, sp.Basic] = {}
    conditions: dict[str, sp.Basic] = {}
    for piece in pieces:
        resolved = _resolve(piece, point)
        if resolved is None:
            return None
        value, condition = resolved
        replacements[piece] = value
        if not isinstance(condition, sp.logic.boolalg.BooleanAtom):  # a constant's step needs no reason
            conditions.setdefault(str(condition), condition)
    return expr.xreplace(replacements), tuple(conditions[k] for k in sorted(conditions))


def _sign_of(u: sp.Basic, point: Mapping[sp.Symbol, float]) -> float | None:
    if isinstance(u, sp.Number):
        return float(u)
    value = evaluate(u, point)
    return None if value is None else float(value)


def _resolve(piece: sp.Basic, point: Mapping[sp.Symbol, float]) -> tuple[sp.Basic, sp.Basic] | None:
    """(the piece's value as an expression, the condition that gives it)."""
    if isinstance(piece, sp.Heaviside):
        u = piece.args[0]
        at_zero = piece.args[1] if len(piece.args) > 1 else sp.S.Half
        v = _sign_of(u, point)
        if v is None or (v == 0 and at_zero not in (0, 1)):
            return None
        if v > 0 or (v == 0 and at_zero == 1):
            return sp.S.One, (u > 0) if v > 0 else sp.Ge(u, 0)
        return sp.S.Zero, sp.Le(u, 0)
    if isinstance(piece, (sp.Max, sp.Min)):
        if len(piece.args) != 2:
            return None
        a, b = piece.args
        if b == 0:
            a, b = b, a
        va, vb = _sign_of(a, point), _sign_of(b, point)
        if va is None or vb is None:
            return None
        larger = vb > va if isinstance(piece, sp.Max) else vb < va
        chosen = b if larger else a
        if a == 0:  # max(0, u): phrased in u, as the steps are
            return chosen, (b > 0) if vb > 0 else sp.Le(b, 0)
        return chosen, (b > a) if vb > va else sp.Le(b, a)
    u = piece.args[0]
    v = _sign_of(u, point)
    if v is None:
        return None
    if v > 0:
        return (u if isinstance(piece, sp.Abs) else sp.S.One), u > 0
    if v < 0:
        return (-u if isinstance(piece, sp.Abs) else -sp.S.One), u < 0
    return sp.S.Zero, sp.Eq(u, 0)


def piecewise_form(expr: sp.Basic, x: sp.Symbol) -> sp.Basic:
    """``expr`` as cases when its steps and kinks are all at x = 0 (elu, leaky_relu): x > 0 and x ≤ 0.

    relu stays max(0, x) (see :func:`branch_at`); anything else stays as it is.
    """
    above, below = branch_at(expr, {x: 1.0}), branch_at(expr, {x: -1.0})
    if above is None or below is None:
        return expr
    if above[1] != (x > 0,) or below[1] != (sp.Le(x, 0),) or above[0] == below[0]:
        return expr  # a kink away from 0, or in another symbol
    return sp.Piecewise((above[0], x > 0), (below[0], True))
