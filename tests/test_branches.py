"""Factors with steps and kinks (relu', elu, leaky_relu) are shown by the branch that holds at the point."""

import math

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner

from derive.app.cli import main
from derive.present.branches import branch_at

SPEC = """
[loss]
kind = "half_sse"
[[layers]]
size = 1
values = [1.0]
[[layers]]
size = 1
activation = "{hidden}"
weights = [[{w}]]
bias = [0.0]
[[layers]]
size = 1
activation = "sigmoid"
weights = [[0.5]]
bias = [0.0]
targets = [0.25]
"""


@pytest.mark.parametrize(
    ("hidden", "w", "shown", "value"),
    [
        ("elu", -0.4, "exp(z2_1)   (z2_1 ≤ 0)", math.exp(-0.4)),
        ("elu", 0.7, "1   (z2_1 > 0)", 1.0),
        ("leaky_relu", -0.4, "0.01   (z2_1 ≤ 0)", 0.01),
        ("relu", 0.7, "1   (a2_1 > 0)", 1.0),
        ("relu", -0.4, "0   (a2_1 ≤ 0)", 0.0),
    ],
)
def test_a_kinked_factor_shows_its_branch_and_the_condition(tmp_path, hidden, w, shown, value):
    spec = tmp_path / "net.toml"
    spec.write_text(SPEC.format(hidden=hidden, w=w))
    result = CliRunner().invoke(main, ["grad", str(spec), "w2_1_1", "--no-closed-form"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "∂a2_1/∂z2_1 =" in line)
    assert line.split(" = ", 1)[1].startswith(shown.split("   ")[0]) and shown.split("   ")[1] in line, line
    assert "Heaviside" not in result.output and "Max(" not in result.output
    numbers = [float(t) for t in result.output.split("∂a2_1/∂z2_1 =", 1)[1].split("∂z2_1")[0].split() if _number(t)]
    assert numbers and numbers[-1] == pytest.approx(value, rel=1e-8)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_branch_at_resolves_steps_and_kinks_and_names_its_conditions():
    z = sp.Symbol("z", real=True)
    elu_prime = (1 - sp.Heaviside(z, 0)) * sp.exp(z - sp.Max(0, z)) + sp.Heaviside(z, 0)
    assert branch_at(elu_prime, {z: -2.0}) == (sp.exp(z), (sp.Le(z, 0),))
    assert branch_at(elu_prime, {z: 0.0}) == (sp.exp(z), (sp.Le(z, 0),))  # torch: elu'(0) = 1 = e⁰
    assert branch_at(elu_prime, {z: 3.0}) == (1, (z > 0,))
    assert branch_at(sp.Max(0, z), {z: -1.0}) is None  # relu itself reads well with numbers
    assert branch_at(sp.exp(z), {z: 1.0}) is None
    assert branch_at(sp.Abs(z) * 2, {z: -1.5}) == (-2 * z, (z < 0,))
    assert branch_at(elu_prime, {}) is None  # no value, no branch
    rng = np.random.default_rng(0)
    for v in rng.uniform(-3, 3, 20):  # the branch has the formula's value wherever it is read
        expr, _ = branch_at(elu_prime, {z: float(v)})
        assert float(expr.subs(z, v)) == pytest.approx(float(elu_prime.subs(z, v)), rel=1e-15)
