"""What Jupyter shows for a Derivation and a Model: HTML with MathML and inline SVG, nothing fetched.

The rows are the ones ``derive grad`` prints (:class:`~derive.present.report.Reporter`),
the diagram the lecture's (:func:`derive.lecture.build.network_diagram`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..core.chain import BatchDerivation
from ..present.mathml import mathml
from ..present.report import BatchReporter, Reporter

if TYPE_CHECKING:
    from ..core.chain import Derivation
    from ..core.worked import Worked

MAX_DRAWN_PARAMETERS = 60  # a bigger network's drawing says little in a notebook cell


def derivation_html(d: Derivation | BatchDerivation, digits: int = 8) -> str:
    """The derivation as a table of equation rows, one per factor, path and sum, with numbers.

    A batch's: sample 1's rows, then the mean (or sum) over the samples.
    """
    reporter = BatchReporter(d, digits) if isinstance(d, BatchDerivation) else Reporter(d, digits)
    q = html.escape(d.quantity.name)
    noun = "path" if d.path_count == 1 else "paths"
    how = "" if d.form == "paths" else ", folded into δ form (BP2)"
    if isinstance(d, BatchDerivation):
        how += f"; each of {len(d.samples)} samples (sample 1 below), then their {d.reduction}"
    rows = "".join(
        f'<tr><td style="text-align:right">{mathml(lhs, displaystyle=True)}</td>'
        f'<td style="text-align:left">{mathml("= " + rhs, displaystyle=True) if rhs else ""}</td></tr>'
        for lhs, rhs in reporter.rows()
    )
    return (
        f'<div class="derive-derivation"><p><b>∂E/∂{q}</b> by the chain rule: {d.path_count} {noun} '
        f"from {q} to E{how}</p><table>{rows}</table></div>"
    )


def model_html(model: Worked) -> str:
    """Name, title, a row per layer, and for a small network with numbers the lecture's drawing of it."""
    spec = model.spec
    rows = []
    for layer in spec.layers:
        role = "input" if layer.number == 1 else ("output" if layer.number == len(spec.layers) else "hidden")
        activation = html.escape(layer.activation) if layer.number > 1 else ""
        rows.append(
            f"<tr><td>{layer.number}</td><td>{role}</td><td style='text-align:right'>{layer.size}</td>"
            f"<td>{activation}</td></tr>"
        )
    parameters = len(spec.parameter_names)
    head = (
        f"<p><b>{html.escape(spec.name)}</b>: {html.escape(spec.title)} — loss {html.escape(spec.loss.kind or spec.loss.expr)}, "
        f"{parameters:,} parameters</p>"
    )
    table = (
        "<table><thead><tr><th>layer</th><th></th><th>neurons</th><th>activation</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    drawing = ""
    if parameters <= MAX_DRAWN_PARAMETERS and model.has_numbers:
        from ..lecture.build import network_diagram
        from ..lecture.html import HtmlRenderer
        from ..lecture.plan import LecturePlan

        assert model.point is not None
        plan = LecturePlan("en", spec.title, spec.description, spec.display_source, (), model.network, model.point)
        drawing = f"<div style='max-width:40rem'>{HtmlRenderer(plan).diagram(network_diagram(model))}</div>"
    return f'<div class="derive-model">{head}{table}{drawing}</div>'
