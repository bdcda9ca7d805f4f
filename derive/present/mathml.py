"""MathML for browsers and notebooks: derive's own LaTeX, converted by ``latex2mathml``.

Only LaTeX that derive's printers wrote reaches the converter (names are
identifiers by validation, numbers are numbers); a spec's free text is escaped
for HTML by the caller and never set as math.
"""

from __future__ import annotations

import re

from latex2mathml.converter import convert as _latex_to_mathml

# operators the converter leaves to the browser's default spacing, which sets ∂E / ∂w too loosely
_TIGHT = {
    "<mo>&#x0002F;</mo>": '<mo lspace="0" rspace="0">/</mo>',
    "<mo>&#x02202;</mo>": "<mi>&#x02202;</mi>",  # TeX's \partial is an ordinary symbol, not an operator
}
_MATH_WRAPPER = re.compile(r'^<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">(.*)</math>$', re.S)


def mathml(latex: str, display: bool = False, displaystyle: bool = False) -> str:
    """``latex`` as a <math> element: a block of its own with ``display``, full-size fractions with either."""
    converted = _latex_to_mathml(latex)
    m = _MATH_WRAPPER.match(converted)
    inner = m.group(1) if m else converted
    for loose, tight in _TIGHT.items():
        inner = inner.replace(loose, tight)
    mode = ' display="block"' if display else (' displaystyle="true"' if displaystyle else "")
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML"{mode}>{inner}</math>'
