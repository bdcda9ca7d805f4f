"""derive: symbolic backpropagation derivations, lectures and generated code.

>>> import derive
>>> model = derive.load("mazur")
>>> d = model.derivation("w1")
>>> d.path_count, round(d.value, 11)
(2, 0.00043856773)
>>> print(d.text().splitlines()[0])
∂E/∂w1 by the chain rule: 2 paths from w1 to E
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = [
    "DeriveError",
    "Model",
    "SpecError",
    "__version__",
    "benchmark",
    "example_text",
    "examples",
    "grade",
    "gradebook",
    "load",
    "load_spec",
    "new",
    "parse_spec",
]

from .app.commands import benchmark, example_text, examples, grade, gradebook, new
from .errors import DeriveError, SpecError
from .spec.reading import load_spec, parse_spec

if TYPE_CHECKING:
    from .app.api import Model


def load(ref: str | Path | Mapping[str, Any]) -> Model:
    """A :class:`derive.app.api.Model` from a spec file's path, a built-in example's name (``"mazur"``),
    TOML text (a string holding a newline) or a dict of the spec's tables (validated like a file).
    """
    from .app.api import Model

    return Model.load(ref)


def __getattr__(name: str) -> Any:
    # keep `import derive` free of sympy until a symbolic object is asked for
    if name == "Model":
        from .app.api import Model

        return Model
    raise AttributeError(name)
