"""`derive lecture`: a step-by-step backpropagation lecture for any spec.

The flow: :func:`build_plan` turns a Model into a :class:`~.plan.LecturePlan`
(content and numbers, no medium); :func:`~.latex.tex_source` renders a plan as
LaTeX through templates/lecture.tex.j2, :func:`~.html.html_source` as one
self-contained web page through templates/lecture.html.j2. Words live in
``words/<lang>.toml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.worked import Worked

from .build import Options, build_plan
from .latex import languages
from .latex import tex_source as render_tex
from .plan import LecturePlan


def tex_source(model: Worked, options: Options) -> str:
    """The LaTeX source of the lecture for ``model``."""
    return render_tex(build_plan(model, options))


def html_source(model: Worked, options: Options) -> str:
    """The lecture for ``model`` as one self-contained HTML page (MathML, inline SVG; needs no TeX)."""
    from .html import html_source as render_html

    return render_html(build_plan(model, options))


__all__ = ["LecturePlan", "Options", "build_plan", "html_source", "languages", "tex_source"]
