"""derive: symbolic backpropagation derivations, lectures and generated code.

>>> import derive
>>> model = derive.load("mazur")
>>> d = model.derivation("w1")
>>> d.path_count, round(d.value, 11)
(2, 0.00043856773)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DeriveError", "Model", "__version__", "load", "load_spec", "parse_spec"]

from .errors import DeriveError
from .spec import load_spec, parse_spec

if TYPE_CHECKING:
    from .api import Model


def load(ref: str) -> Model:
    """Load a spec file or built-in example into a :class:`derive.api.Model`."""
    from .api import Model

    return Model.load(ref)


def __getattr__(name: str) -> Any:
    # keep `import derive` free of sympy until a symbolic object is asked for
    if name == "Model":
        from .api import Model

        return Model
    raise AttributeError(name)
