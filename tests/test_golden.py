"""Generated code checked in: a change to the generator shows up as a reviewable diff.

Regenerate after an intended change with ``DERIVE_UPDATE_GOLDEN=1 pytest tests/test_golden.py``.
"""

import os
from pathlib import Path

import pytest

from derive.app.api import Model
from derive.codegen.modules import scalar_module, vector_module

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "mazur_grad.py": lambda: vector_module(Model.load("mazur")),
    "mazur_closed.py": lambda: scalar_module(Model.load("mazur")),
    "softmax_grad.py": lambda: vector_module(Model.load("softmax")),
    "swish_grad.py": lambda: vector_module(Model.load("swish")),
    "digits_grad.py": lambda: vector_module(Model.load("digits")),
    "softmax_grad_array_api.py": lambda: vector_module(Model.load("softmax"), "array-api"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_code_matches_the_golden_file(name):
    source = CASES[name]()
    path = GOLDEN / name
    if os.environ.get("DERIVE_UPDATE_GOLDEN"):
        path.write_text(source)
    assert path.read_text() == source, f"{name} changed: review the diff, then regenerate (see this module's docstring)"
