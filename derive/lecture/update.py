"""The lecture's update section for an optimiser beyond plain gradient descent: the rule, then two steps.

The lines and their numbers are :class:`derive.present.update.Update`'s (the optimiser's own terms, the
engine's numbers); this module only arranges them into blocks with their sentences.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp

from ..present.update import Update, update_of
from .plan import Block, Code, Equations, Line, Math, Paragraph, Table, Text, say

if TYPE_CHECKING:
    from ..core.worked import Worked


def update_blocks(
    model: Worked, weight: sp.Symbol, gradient: float | None
) -> tuple[list[Block], dict[sp.Symbol, float]]:
    """The rule for ``weight`` and its first two steps, and the numbers the chains' symbols stand for (the plan's
    point takes them); nothing for plain gradient descent. ``gradient`` is ∂E/∂weight already derived, if it is.
    """
    update = update_of(model, weight.name, gradient)
    if update is None:
        return [], {}
    return _blocks(update, weight)


def _blocks(update: Update, weight: sp.Symbol) -> tuple[list[Block], dict[sp.Symbol, float]]:
    optimizer = update.optimizer
    blocks: list[Block] = [
        Paragraph((say("update_rule_intro", optimizer=Text(optimizer.name), weight=Math(weight)),)),
        Equations(tuple(Line(s.chain) for s in (*update.setting_lines(latex=True), *update.rule(latex=True)))),
    ]
    whys: list[str] = []
    for line in update.rule(latex=True):
        if line.why not in whys:
            whys.append(line.why)
    blocks.append(Paragraph(tuple(say("opt_why_" + why) for why in whys), note=True))
    values: dict[sp.Symbol, float] = {}
    for step in update.steps:
        lines = [update.gradient_line(step, latex=True), *update.step_lines(step, latex=True)]
        for line in lines:
            values.update(line.values)
        if step.t == 1:
            blocks.append(Paragraph((say("update_two_steps", weight=Math(weight)),)))
        else:
            blocks.append(Paragraph((say("update_second_step"),)))
        blocks.append(Equations(tuple(Line(line.chain) for line in lines)))
    if update.steps:
        names = ", ".join(line.check for line in update.step_lines(update.steps[0]) if line.check)
        blocks.append(Paragraph((say("update_check_names", names=Code(names)),), note=True))
    return blocks, values


class WithUpdate(Mapping[sp.Symbol, float]):
    """The lecture's point with the update's numbers in front: the chains of its steps substitute from it."""

    def __init__(self, update: Mapping[sp.Symbol, float], point: Mapping[sp.Symbol, float]) -> None:
        self.update = update
        self.point = point

    def __getitem__(self, symbol: sp.Symbol) -> float:
        return self.update[symbol] if symbol in self.update else self.point[symbol]

    def offset(self, symbol: sp.Symbol) -> tuple[int, float] | None:
        """A saturated out's distance from ±1, as the lecture's point knows it (ExactWhereLost)."""
        find = getattr(self.point, "offset", None)
        return None if symbol in self.update or find is None else find(symbol)

    def __iter__(self) -> Iterator[sp.Symbol]:
        yield from self.update
        yield from (symbol for symbol in self.point if symbol not in self.update)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class FirstStep:
    """An exercise on the first step of the spec's optimiser for one weight: the question (the rule and its
    settings), the worked answer, what a student hands in (derive check's names: ``exp_avg(w1)@1``, ``w1@1``)
    and the numbers the answer's lines stand for."""

    question: tuple[Block, ...]
    answer: tuple[Block, ...]
    claims: tuple[tuple[str, float], ...]
    values: dict[sp.Symbol, float]


def first_step(model: Worked, weight: sp.Symbol) -> FirstStep | None:
    """The exercise for ``weight``; None for plain gradient descent (its exercise is p' = p − η·∂E/∂p)."""
    update = update_of(model, weight.name, steps=1)
    if update is None or not update.steps:
        return None
    step = update.steps[0]
    rule = (*update.setting_lines(latex=True), *update.rule(latex=True))
    # the names the answers are handed in under (derive check's), for each quantity the rule writes
    named = tuple(
        (Math(line.chain.lhs), Code(line.check)) for line in update.step_lines(step, latex=True) if line.check
    )
    question: tuple[Block, ...] = (
        Paragraph((say("opt_exercise", optimizer=Text(update.optimizer.name), weight=Math(weight)),)),
        Equations(tuple(Line(line.chain) for line in rule)),
        Table((say("symbol"), say("opt_check_name")), named, (False, False)),
    )
    lines = [update.gradient_line(step, latex=True), *update.step_lines(step, latex=True)]
    answer: tuple[Block, ...] = (
        Paragraph((say("opt_exercise_answer", weight=Math(weight)),)),
        Equations(tuple(Line(line.chain) for line in lines)),
    )
    claims = tuple(
        (line.check, float(step.after[term.target]))
        for line, term in zip(update.step_lines(step), update.terms)
        if line.check
    )
    return FirstStep(question, answer, claims, step_values(update))


def step_values(update: Update) -> dict[sp.Symbol, float]:
    """The numbers every LaTeX line of the update's steps stands for (a plan's point takes them)."""
    values: dict[sp.Symbol, float] = {}
    for step in update.steps:
        for line in update.step_lines(step, latex=True):
            values.update(line.values)
    return values
