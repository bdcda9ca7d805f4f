"""The commands that need no model, as functions: ``derive examples``, ``new``, ``check --claims``, ``bench``.

``derive bench`` is :func:`benchmark` (``derive.bench.measure`` is the module that measures).

Thin wrappers over what the CLI calls; ``import derive`` stays free of sympy until one runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..spec.reading import load_spec

if TYPE_CHECKING:
    from ..check.claims import Report
    from ..grading.gradebook import Gradebook
    from .api import SpecRef


def examples() -> dict[str, str]:
    """The built-in examples by name, each with its title: ``derive examples``."""
    from ..spec.reading import builtin_examples

    return {name: load_spec(name).title for name in builtin_examples()}


def example_text(name: str) -> str:
    """A built-in example's TOML, to copy and edit: ``derive examples NAME``."""
    from ..spec.reading import builtin_example_text

    return builtin_example_text(name)


def new(
    sizes: str | Sequence[int] | None = None,
    *,
    hidden: str = "",
    out: str = "",
    loss: str = "",
    seed: int = 0,
    name: str = "network",
    path: str | Path | None = None,
    conv: str | Sequence[int] | None = None,
    rnn: str | Sequence[int] | None = None,
    **layers: Any,
) -> str:
    """A commented spec to start from (written to ``path`` too when given): ``derive new``.

    ``sizes`` is ``"4-5-3"`` or ``(4, 5, 3)`` for a dense network; or ``conv=(1, 6, 6)`` (``"1x6x6"``) for a
    convolutional one, ``rnn=(5, 3)`` for a recurrent one, with ``layers`` as the CLI's options
    (``kernel=3``, ``pool="avg"``, ``units=4``, ``outputs=2``, …). ``hidden`` defaults to sigmoid (relu for a
    conv, tanh for an rnn), ``out`` to softmax for cross_entropy, else sigmoid.
    """
    from ..files import write_atomic
    from .newspec import NewSpec, request_for, spec_text

    def text(value: str | Sequence[int] | None, sep: str) -> str | None:
        return value if value is None or isinstance(value, str) else sep.join(str(int(n)) for n in value)

    options = NewSpec((), hidden=hidden, out=out, loss=loss, seed=seed, name=name, **layers)
    request = request_for(text(sizes, "-"), text(conv, "x"), text(rnn, "x"), options)
    spec = spec_text(request)
    if path is not None:
        write_atomic(path, spec)
    return spec


def grade(spec: SpecRef, claims: str | Path, min_digits: int | None = None) -> Report:
    """Check a claims file (a student's answers, an article's numbers) against a spec: ``derive check SPEC --claims FILE``
    (``min_digits``: ``--min-digits``; None takes the spec's ``[grading] digits``)."""
    from ..check.claims import check, load_claims
    from .api import Model

    return check(Model.load(spec), load_claims(claims), min_digits)


def gradebook(class_dir: str | Path, submissions: str | Path) -> Gradebook:
    """Every student's submission in ``submissions`` checked against their variant in ``class_dir``:
    ``derive grade CLASS_DIR SUBMISSIONS_DIR`` (:func:`~derive.grading.gradebook.gradebook_csv` writes its CSV)."""
    from ..grading.gradebook import grade_class
    from .api import Model

    return grade_class(class_dir, submissions, load=Model)


def benchmark(
    *, quick: bool = False, budget: float = 1.0, torch_compile: bool = True, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Time the generated module against hand-written backprop and PyTorch: ``derive bench`` (its JSON data)."""
    from ..bench import conv
    from ..bench.measure import SHAPES, run

    data = run(SHAPES[:3] if quick else SHAPES, budget=budget, torch_compile=torch_compile, log=log)
    data["conv"] = conv.run(budget=budget, repeats=1 if quick else 3, log=log)
    return data
