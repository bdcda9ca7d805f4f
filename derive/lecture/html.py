"""The HTML renderer: a :class:`LecturePlan` becomes one self-contained web page.

Math is MathML (browsers render it natively, nothing is fetched): every formula
is first spelled in LaTeX by the same printers as the PDF
(:class:`~.latex.LatexRenderer`), then converted with ``latex2mathml``. Only
derive's own LaTeX reaches the converter: the spec's free text (title,
description, the published source) is escaped for HTML and never set as math.
The diagrams and the loss curve are inline SVG drawn from the plan's geometry,
with the PDF's path colours. Everything produced here is marked :class:`Html`.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..present.equations import EquationChain
from ..present.mathml import mathml as _mathml
from ..present.mathml import split_top
from ..present.numbers import format_number, latex_number
from ..present.render import Html, html_escape, render_html
from .latex import LatexRenderer, plan_words, visible_width
from .plan import (
    Block,
    Code,
    Count,
    Diagram,
    Equations,
    Exercises,
    Field,
    Grid,
    LecturePlan,
    Line,
    Math,
    MatrixForm,
    Num,
    Paragraph,
    Plot,
    Say,
    Section,
    Standard,
    Table,
    Text,
)

if TYPE_CHECKING:
    import sympy as sp

SHARED_COLOUR = "rgb(0,0,0)"  # an edge shared by every highlighted path: black, as in the PDF
# the PDF's colours (templates/lecture.tex.j2), as CSS
PATH_COLOURS = ("rgb(200,40,40)", "rgb(30,90,200)", "rgb(0,140,60)", "rgb(170,90,0)")
NODE_STYLES = {  # stroke, fill: TikZ's blue!60!black on blue!8 and friends
    "input": ("rgb(0,102,0)", "rgb(235,245,235)"),
    "hidden": ("rgb(0,0,153)", "rgb(235,235,255)"),
    "output": ("rgb(153,0,0)", "rgb(255,235,235)"),
}
PX_PER_CM = 48.0
# inline, not in the page's CSS: a notebook shows the same drawing without the lecture's stylesheet
_CENTRED = "display:flex;align-items:center;justify-content:center;width:100%;height:100%;"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_SAFE_MATH_TEXT = re.compile(r"[\w .,:;()'+\-–…/]*")


def mathml(latex: str, display: bool = False, displaystyle: bool = False) -> Html:
    """derive's LaTeX as a <math> element (see :func:`derive.present.mathml.mathml`)."""
    return Html(_mathml(latex, display, displaystyle))


class HtmlRenderer:
    def __init__(self, plan: LecturePlan, text_labels: bool = False) -> None:
        self.plan = plan
        # a diagram's labels as plain SVG text, not MathML: an SVG shown as an <img> (Moodle's copy) drops
        # a foreignObject's HTML
        self.text_labels = text_labels
        self.words = plan_words(plan)
        self.latex = LatexRenderer(plan)  # the PDF's spelling of every formula
        self.names = plan.network.latex
        self.diagrams = 0  # numbers each diagram's marker ids: several SVGs share the page

    # -- sentences ------------------------------------------------------------

    def sentence(self, s: Say) -> Html:
        template = self.words[s.key]
        fields = dict(s.fields)
        out: list[str] = []
        for i, segment in enumerate(template.split("$")):
            if i % 2 == 1:  # math of the word file, with math fields spelled in LaTeX
                body = _PLACEHOLDER.sub(lambda m: self.math_field(fields[m.group(1)]), segment)
                out.append(mathml(body))
                continue
            pos = 0
            for m in _PLACEHOLDER.finditer(segment):
                out.append(html_escape(segment[pos : m.start()]))
                out.append(self.field(fields[m.group(1)]))
                pos = m.end()
            out.append(html_escape(segment[pos:]))
        return Html(_GLUED.sub(_glue, "".join(out)))

    def math_field(self, f: Field) -> str:
        """A field inside a word file's math: LaTeX. Text there is derive's own (a name, a count)."""
        if isinstance(f, Math | Num):
            return self.latex.field(f, in_math=True)
        if isinstance(f, Count):
            return str(f.n)
        text = self.sentence(f) if isinstance(f, Say) else f.text
        if not _SAFE_MATH_TEXT.fullmatch(text):  # a bug in derive: free text is never set as math
            raise ValueError(f"text {text!r} in math")
        return rf"\text{{{text}}}"

    def field(self, f: Field) -> Html:
        if isinstance(f, Say):
            return self.sentence(f)
        if isinstance(f, Count):
            return Html(f"{f.n:,}" if self.plan.lang == "en" else str(f.n))
        if isinstance(f, Text):
            return html_escape(f.text)
        if isinstance(f, Code):
            return Html(f"<code>{html_escape(f.text)}</code>")
        if isinstance(f, Num):
            return mathml(self.latex.field(f, in_math=True))
        if isinstance(f.expr, EquationChain):  # "δ_o1 = 0.138": a narrow table cell may wrap after the "="
            sides = self.latex.printer.sides(f.expr)
            pieces = [sides[0] + " ="] + [f"{side} =" for side in sides[1:-1]] + sides[-1:] if len(sides) > 1 else sides
            return Html(" ".join(f'<span class="piece">{mathml(p)}</span>' for p in pieces))
        return mathml(self.latex.math(f.expr, inline=True))

    # -- equations ---------------------------------------------------------------

    def equation_rows(self, line: Line) -> list[dict[str, Any]]:
        """A chain as rows of (lhs, "= rest"), broken where the PDF breaks it; the tag on the first row."""
        rows = []
        for k, row in enumerate(self.latex.rows(Line(line.chain))):
            cells = split_top(row, "&")
            lhs, rhs = cells[0].strip(), "".join(cells[1:]).strip()
            # each "= side" its own group of <math>s, split between factors and terms, so that a narrow
            # screen wraps a chain between its sides, and a long product between its factors
            sides = [p.strip() for p in split_top(rhs, "=")] if rhs.startswith("=") else [rhs]
            pieces = [("= " + p) if rhs.startswith("=") else p for p in (sides[1:] if rhs.startswith("=") else sides)]
            groups = [
                "".join(
                    f'<span class="piece">{_infix(mathml(t, displaystyle=True), k > 0)}</span>'
                    for k, t in enumerate(wrap_points(loose_fences(p)))
                )
                for p in pieces
                if p
            ]
            rows.append(
                {
                    "lhs": mathml(lhs, displaystyle=True) if lhs else Html(""),
                    "rhs": Html("".join(f'<span class="side">{g}</span>' for g in groups)),
                    "tag": self.sentence(line.tag) if line.tag is not None and k == 0 else None,
                    "colour": PATH_COLOURS[line.colour % len(PATH_COLOURS)] if line.colour is not None else None,
                }
            )
        return rows

    def standard(self, name: str) -> dict[str, Any]:
        if name != "bp":
            return {"kind": "display", "body": mathml(self.latex.standard(name), display=True)}
        body = self.latex.standard("bp")
        inner = body.removeprefix(r"\begin{aligned}").removesuffix(r"\end{aligned}")
        rows = []
        for k, row in enumerate(split_top(inner, "\\\\"), start=1):
            cells = split_top(row, "&")
            rows.append(
                {
                    "lhs": mathml(cells[0].strip(), displaystyle=True),
                    "rhs": mathml(cells[1].strip(), displaystyle=True),
                    "tag": Html(f"BP{k}: {self.sentence(Say(f'bp{k}'))}"),
                    "colour": None,
                }
            )
        return {"kind": "equations", "caption": None, "rows": rows}

    def exercise_part(self, b: Exercises) -> dict[str, Any]:
        """What a sheet (questions alone, a line to fill in for each claim) or a key (worked answers) adds."""
        return {
            "part": b.part,
            "hand_in": self.sentence(b.hand_in) if b.hand_in else None,
            "claims": [self.field(Code(f"{c.name} =")) for item in b.items for c in item.claims],
        }

    # -- blocks --------------------------------------------------------------------

    def block(self, b: Block) -> dict[str, Any]:
        if isinstance(b, Exercises) and b.part != "both":  # an exercise sheet or an answer key
            return {**self.block(replace(b, part="both", hand_in=None)), **self.exercise_part(b)}
        if isinstance(b, Paragraph):
            # Chinese runs sentences together; a space there would show (xeCJK drops it in the PDF)
            joiner = "" if self.plan.lang == "zh" else " "
            text = Html(joiner.join(self.sentence(s) for s in b.sentences))
            rows = [row for line in b.math for row in self.equation_rows(line)]
            return {"kind": "paragraph", "text": text, "note": b.note, "math": rows}
        if isinstance(b, Equations):
            return {
                "kind": "equations",
                "caption": self.sentence(b.caption) if b.caption else None,
                "rows": [row for line in b.lines for row in self.equation_rows(line)],
            }
        if isinstance(b, Standard):
            return self.standard(b.name)
        if isinstance(b, MatrixForm):
            return {"kind": "display", "body": mathml(self.latex.matrix(b), display=True)}
        if isinstance(b, Table):
            return {
                "kind": "table",
                "header": [self.sentence(h) for h in b.header],
                "rows": [[self.field(c) for c in row] for row in b.rows],
                "numeric": list(b.numeric),
                "note": self.sentence(b.note) if b.note else None,
                "caption": self.sentence(b.caption) if b.caption else None,
            }
        if isinstance(b, Diagram):
            return {"kind": "svg", "svg": self.diagram(b), "small": b.small}
        if isinstance(b, Plot):
            return {"kind": "svg", "svg": self.plot(b), "small": False}
        if isinstance(b, Grid):
            return self.grid(b)
        assert isinstance(b, Exercises)
        # on the page each answer opens under its question: the words for that, where the PDF has its own
        web = f"{b.intro.key}_web"
        intro = Say(web, b.intro.fields) if web in self.words else b.intro
        return {
            "kind": "exercises",
            "intro": self.sentence(intro),
            "entries": [
                {
                    "question": [self.block(q) for q in item.question],
                    "answer": [self.block(a) for a in item.answer],
                }
                for item in b.items
            ],
            "answer_word": self.sentence(Say("answer_web")),
        }

    def grid(self, g: Grid) -> dict[str, Any]:
        """Maps as HTML tables side by side (they wrap on a narrow screen), marked cells coloured."""
        panels = []
        for p in g.panels:
            n = max((len(row) for row in p.cells), default=0)
            rows = []
            for r, row in enumerate(p.cells):
                cells = []
                for c, value in enumerate(row):
                    mark = p.marks[r][c] if p.marks else 0
                    if not g.numbers:
                        text = ""
                    elif value is None:
                        text = "·"
                    else:
                        text = format_number(value, g.digits).replace("-", "−")
                    cells.append({"text": text, "mark": f"m{mark}" if mark else ""})
                rows.append({"number": p.row_start + r, "cells": cells})
            panels.append(
                {
                    "label": self.field(p.label),
                    "head": [p.col_start + c for c in range(n)],
                    "rows": rows,
                }
            )
        return {
            "kind": "grid",
            "caption": self.sentence(g.caption) if g.caption else None,
            "note": self.sentence(g.note) if g.note else None,
            "panels": panels,
            "numbers": g.numbers,
        }

    # -- the diagram -----------------------------------------------------------------

    def diagram(self, d: Diagram) -> Html:
        """The network as SVG: the PDF's coordinates (cm, y up) at PX_PER_CM, labels as MathML."""
        radius = 0.33 if d.small else 0.55
        margin = 0.4 if d.small else 1.2
        xs = [n.x for n in d.nodes] + [x for x, _ in d.dots]
        ys = [n.y for n in d.nodes] + [y for _, y in d.dots]
        left, right = min(xs) - radius - margin, max(xs) + radius + margin
        bottom, top = min(ys) - radius - margin * 0.6, max(ys) + radius + margin * 0.6
        width, height = (right - left) * PX_PER_CM, (top - bottom) * PX_PER_CM

        def px(x: float, y: float) -> tuple[float, float]:
            return (x - left) * PX_PER_CM, (top - y) * PX_PER_CM

        self.diagrams += 1
        key = f"d{self.diagrams}"
        at = {n.id: n for n in d.nodes}
        parts: list[str] = []
        arrow = 8 if d.small else 10
        markers = ["grey", "shared", *(f"c{i}" for i in range(len(PATH_COLOURS)))]
        colours = ["rgb(110,110,110)", SHARED_COLOUR, *PATH_COLOURS]
        parts.append(
            "<defs>"
            + "".join(
                f'<marker id="{key}-{m}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" '
                f'markerWidth="{arrow}" markerHeight="{arrow}" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
                for m, c in zip(markers, colours)
            )
            + "</defs>"
        )
        labels: list[str] = []
        for e in d.edges:
            a, b = at[e.src], at[e.dst]
            (x1, y1), (x2, y2) = px(a.x, a.y), px(b.x, b.y)
            length = math.hypot(x2 - x1, y2 - y1) or 1.0
            ux, uy = (x2 - x1) / length, (y2 - y1) / length
            start = radius * PX_PER_CM if a.kind not in ("bias",) else 14.0
            end = radius * PX_PER_CM + 2
            sx, sy, ex, ey = x1 + ux * start, y1 + uy * start, x2 - ux * end, y2 - uy * end
            if e.colour is not None and e.colour < 0:  # an edge every highlighted path runs through (black in the PDF)
                colour, marker, extra = SHARED_COLOUR, "shared", ' stroke-width="3"'
            elif e.colour is not None:
                colour, marker, extra = (
                    PATH_COLOURS[e.colour % len(PATH_COLOURS)],
                    f"c{e.colour % 4}",
                    ' stroke-width="3"',
                )
            elif a.kind == "bias":
                colour, marker, extra = "rgb(150,150,150)", "grey", ' stroke-dasharray="5,4"'
            else:
                colour, marker = ("rgb(190,190,190)" if d.small else "rgb(110,110,110)"), "grey"
                extra = ""
            parts.append(
                f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" stroke="{colour}"{extra} '
                f'marker-end="url(#{key}-{marker})"/>'
            )
            if e.label is not None:
                text = self.names[e.label] + (
                    " = " + latex_number(e.value, self.plan.digits) if e.value is not None else ""
                )
                lx, ly = sx + (ex - sx) * e.pos, sy + (ey - sy) * e.pos
                labels.append(self._label(lx, ly, text, "edge", self._plain(e.label, e.value)))
        for n in d.nodes:
            cx, cy = px(n.x, n.y)
            if n.kind in NODE_STYLES:
                stroke, fill = NODE_STYLES[n.kind]
                parts.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius * PX_PER_CM:.1f}" stroke="{stroke}" '
                    f'fill="{fill}" stroke-width="1.5"/>'
                )
                if d.small and n.tag is not None:  # a small copy: the neuron's short name, as plain SVG text
                    labels.append(
                        f'<text class="node-label" x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" '
                        f'font-size="11" font-family="serif">{html_escape(n.tag)}</text>'
                    )
                elif d.small and n.label is not None:
                    labels.append(self._label(cx, cy, self.names[n.label], "small", n.label.name))
                elif n.label is not None:
                    labels.append(self._label(cx, cy, self.names[n.label], "node", n.label.name))
                continue
            text = (self.names[n.label] if n.label is not None else "1") + (
                " = " + latex_number(n.value, self.plan.digits) if n.value is not None else ""
            )
            if n.kind == "bias":
                parts.append(
                    f'<rect x="{cx - 62:.1f}" y="{cy - 13:.1f}" width="124" height="26" rx="6" '
                    'fill="rgb(240,240,240)" stroke="rgb(150,150,150)"/>'
                )
            kind = "bias" if n.kind == "bias" else "biaslabel"
            labels.append(self._label(cx, cy, text, kind, self._plain(n.label, n.value)))
        for x, y in d.dots:
            cx, cy = px(x, y)
            parts.append(f'<text x="{cx:.1f}" y="{cy + 6:.1f}" text-anchor="middle" font-size="22">⋮</text>')
        body = "".join(parts + labels)
        kind = "path-diagram" if d.small else "network-diagram"
        return Html(
            f'<svg class="{kind}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.1f} {height:.1f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img">{body}</svg>'
        )

    def _plain(self, symbol: sp.Symbol | None, value: float | None) -> str:
        """A label as plain text: the symbol's name (w5, out_h1), "1" for a bias node, and its value."""
        name = symbol.name if symbol is not None else "1"
        return name + (" = " + format_number(value, self.plan.digits) if value is not None else "")

    def _label(self, x: float, y: float, latex: str, kind: str, plain: str) -> str:
        """A MathML label centred at (x, y), in a foreignObject; ``plain`` as SVG text with ``text_labels``."""
        w, h = (150, 28) if kind not in ("node", "small") else (60, 28)
        size, colour = ("12px", "rgb(90,90,90)") if kind == "biaslabel" else ("13px", "inherit")
        if kind == "small":
            size = "10px"
        if self.text_labels:  # a white halo where the PDF backs the label
            halo = ' stroke="white" stroke-width="3" paint-order="stroke"' if kind in ("edge", "bias") else ""
            fill = "" if colour == "inherit" else f' fill="{colour}"'
            return (
                f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="{size[:-2]}" '
                f'font-family="serif"{fill}{halo}>{html_escape(plain)}</text>'
            )
        backing = "background:rgba(255,255,255,0.9);padding:0 2px;" if kind in ("edge", "bias") else ""
        return (
            f'<foreignObject x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w}" height="{h}">'
            f'<div xmlns="http://www.w3.org/1999/xhtml" class="label-{kind}" style="{_CENTRED}font-size:{size};color:{colour}">'
            f'<span style="{backing}">{mathml(latex)}</span></div></foreignObject>'
        )

    # -- the loss curve ------------------------------------------------------------

    def plot(self, p: Plot) -> Html:
        width, height = 640.0, 320.0
        left, right, top, bottom = 78.0, 20.0, 16.0, 52.0
        xmax = max(p.xmax, 1)
        values = [v for _, v in p.points]
        if p.log:
            lo, hi = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
            hi = max(hi, lo + 1)

            def yscale(v: float) -> float:
                return (math.log10(v) - lo) / (hi - lo)

            step = max(1, math.ceil((hi - lo) / 8))
            # a typographic minus in the exponent's text only: the tspan's attributes are markup
            yticks = [
                (yscale(10.0**k), Html(f'10<tspan dy="-7" font-size="10">{str(k).replace("-", "−")}</tspan>'))
                for k in range(lo, hi + 1, step)
            ]
        else:
            vmin, vmax = min(0.0, min(values)), max(values)
            vmax = vmax if vmax > vmin else vmin + 1.0
            ticks = _nice_ticks(vmin, vmax)
            vmin, vmax = min(vmin, ticks[0]), max(vmax, ticks[-1])

            def yscale(v: float) -> float:
                return (v - vmin) / (vmax - vmin)

            yticks = [(yscale(t), html_escape(format_number(t, 3))) for t in ticks]

        def px(i: float, v_scaled: float) -> tuple[float, float]:
            return left + (width - left - right) * i / xmax, height - bottom - (height - top - bottom) * v_scaled

        parts = [
            f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
            'fill="white" stroke="rgb(120,120,120)"/>'
        ]
        for scaled, label in yticks:
            _, y = px(0, scaled)
            parts.append(
                f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="rgb(225,225,225)"/>'
                f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{label}</text>'
            )
        for t in _nice_ticks(0, xmax):
            if t > xmax:
                continue
            x, _ = px(t, 0)
            parts.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="rgb(225,225,225)"/>'
                f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="12">{int(t)}</text>'
            )
        points = " ".join("{:.1f},{:.1f}".format(*px(i, yscale(v))) for i, v in p.points)
        parts.append(f'<polyline class="loss" fill="none" stroke="rgb(0,0,179)" stroke-width="2" points="{points}"/>')
        labels = [
            self._axis_label((left + width - right) / 2, height - 16, self.sentence(p.x_label)),
            self._axis_label(22, (top + height - bottom) / 2, self.sentence(p.y_label)),
        ]
        return Html(
            f'<svg class="loss-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" font-family="sans-serif" role="img">{"".join(parts + labels)}</svg>'
        )

    def _axis_label(self, x: float, y: float, text: Html) -> str:
        w, h = 200, 26
        if self.text_labels:  # the sentence's text, its maths' characters in a row
            shown = html_escape(html.unescape(re.sub(r"<[^>]*>", "", text)))
            return f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="13">{shown}</text>'
        return (
            f'<foreignObject x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w}" height="{h}">'
            f'<div xmlns="http://www.w3.org/1999/xhtml" style="{_CENTRED}font-size:13px"><span>{text}</span></div>'
            "</foreignObject>"
        )

    # -- the page ------------------------------------------------------------------

    def section(self, s: Section, number: str, level: int = 1) -> dict[str, Any]:
        subsections = []
        count = 0
        for sub in s.subsections:
            count += sub.numbered
            subsections.append(self.section(sub, f"{number}.{count}" if sub.numbered and number else "", level + 1))
        return {
            "id": s.key or None,
            "title": self.sentence(s.title),
            "number": number if s.numbered else "",
            "level": level,
            "blocks": [self.block(b) for b in s.blocks],
            "subsections": subsections,
        }

    def context(self) -> dict[str, Any]:
        plan = self.plan
        sections = []
        count = 0
        for s in plan.sections:
            count += s.numbered
            sections.append(self.section(s, str(count) if s.numbered else ""))
        return {
            "lang": plan.lang,
            "title": plan.title,
            "description": plan.description,
            "generated": self.sentence(Say("generated", (("source", Code(plan.source)),))),
            "sections": sections,
            "subtitle": self.sentence(plan.subtitle) if plan.subtitle else None,
        }


_OPERATORS = (r"\cdot", "+")
# only \left…\right and environments must stay whole: a sized bracket (\Bigl( … \Bigr)) may be wrapped inside
_OPENERS = re.compile(r"\\(left|begin)\b")
_CLOSERS = re.compile(r"\\(right|end)\b")


# a formula with the letters or brackets written against it ("δs", "(0.5)"): one unit a line never breaks
# (a bracket before; a few letters, then one closing bracket or punctuation mark after: never a run of CJK text)
_GLUED = re.compile(r"([(\[]?)(<math\b.*?</math>)([A-Za-z]{0,3}[)\].,;:!?'’）。，、：；]?)")


def _glue(m: re.Match[str]) -> str:
    if not m.group(1) and not m.group(3):
        return m.group(0)
    return f'<span style="white-space:nowrap">{m.group(0)}</span>'


WRAP_WIDTH = 30  # a formula wider than this (visible characters) may need to wrap on a phone
_LEADING_OPERATOR = re.compile(r'^(<math[^>]*>(?:<mrow>)?)<mo(?: form="prefix" lspace="0" rspace="0")?>')


def _infix(element: Html, continued: bool) -> Html:
    """A piece that continues a row ("+ i2 w2", "· 0.5", "− y2 log a2") starts with a binary operator: marked
    infix, or the browser takes it for a sign and sets "+i2 w2" tight."""
    if not continued:
        return element
    return Html(_LEADING_OPERATOR.sub(r'\1<mo form="infix">', element, count=1))


_TALL_LATEX = re.compile(r"\\(frac|sum|prod|begin|sqrt)\b")


def loose_fences(latex: str) -> str:
    r"""Each top-level ``\left( … \right)`` of a long formula as brackets a narrow screen may wrap inside:
    plain ( ) around a line of terms (as the page shows them anyway), \Big( \Big) around fractions. The
    PDF keeps \left…\right; a phone wraps (w δ + w δ + ⋯) between its terms."""
    if visible_width(latex) <= WRAP_WIDTH or r"\left" not in latex:
        return latex
    out: list[str] = []
    stack: list[int] = []  # for each open \left at depth 0: its place in ``out``
    depth = 0
    i = 0
    while i < len(latex):
        m = re.match(r"\\(left|right)\b\s*(\\\{|\\\}|\\\||.)", latex[i:])
        if m:
            if m.group(1) == "left":
                stack.append(len(out))
                out.append(m.group(0))
                depth += 1
            else:
                depth -= 1
                start = stack.pop() if stack else None
                if start is not None and depth == 0 and m.group(2) in (")", "]"):
                    inner = "".join(out[start + 1 :])
                    size = r"\Big" if _TALL_LATEX.search(inner) else ""
                    out[start] = size + out[start][len(r"\left") :].strip()
                    out.append(size + m.group(2))
                else:
                    out.append(m.group(0))
            i += len(m.group(0))
            continue
        out.append(latex[i])
        i += 1
    return "".join(out)


def wrap_points(latex: str, least: int = 12) -> list[str]:
    r"""``latex`` cut before each top-level ``\cdot``, ``+`` and binary ``-`` (outside braces, \left…\right and
    environments), each piece at least ``least`` characters: places a long product or sum may wrap."""
    pieces: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(latex):
        ch = latex[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", latex[i:])
            name = m.group(0) if m else "\\"
            if _OPENERS.match(name):
                depth += 1
            elif _CLOSERS.match(name):
                depth -= 1
            elif depth == 0 and name == _OPERATORS[0] and i - start >= least:
                pieces.append(latex[start:i].strip())
                start = i
            i += len(name)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in "+-" and depth == 0 and i - start >= least and latex[:i].rstrip()[-1:] not in ("=", "(", "+", "-"):
            pieces.append(latex[start:i].strip())
            start = i
        i += 1
    pieces.append(latex[start:].strip())
    return [p for p in pieces if p]


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def html_context(plan: LecturePlan) -> dict[str, Any]:
    """The template context of a plan."""
    return HtmlRenderer(plan).context()


def html_source(plan: LecturePlan) -> str:
    """The lecture as one self-contained HTML page."""
    return render_html("lecture.html.j2", **html_context(plan))


__all__ = ["html_context", "html_source", "mathml"]
