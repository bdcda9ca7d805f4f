"""What a new user tripped over: each item of the issue, checked the way the user met it.

Numbers are compared with values computed here by other means (math, NumPy, a hand-written
backprop), never with derive's own output.
"""

import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from derive.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=None, input=None):
    """The CLI as a user runs it: a real process, stdout and stderr apart."""
    return subprocess.run(
        [sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=cwd, input=input, timeout=600
    )


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def refused(result, *words):
    """Exit status 2, one message naming what the user must know, never a traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # click's runner: sys.exit(2), not an uncaught exception
    for word in words:
        assert word in result.output, result.output


# -- 1. bce needs outputs in (0, 1) ---------------------------------------------------------------

ONE_OUTPUT = """
name = "one"
loss = "bce"
[[layers]]
names = ["x1"]
values = [0.5]
[[layers]]
names = ["o1"]
activation = "{activation}"
weights = [[{weight}]]
targets = [1.0]
"""


def spec_file(tmp_path, activation, weight=-0.5, name="net.toml"):
    path = tmp_path / name
    path.write_text(ONE_OUTPUT.format(activation=activation, weight=weight))
    return path


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear", "softplus", "elu", "leaky_relu", "gelu"])
@pytest.mark.parametrize("command", [["show"], ["grad", "--all"], ["train"], ["grad", "w_o1_x1"]])
def test_bce_over_an_output_that_can_leave_0_1_is_refused_when_the_spec_is_read(tmp_path, activation, command):
    path = spec_file(tmp_path, activation)
    result = invoke(command[0], str(path), *command[1:])
    refused(result, f"{path}: loss.kind", "bce needs outputs in (0, 1)", repr(activation), '"sigmoid"', "softmax")


def test_bce_refusal_is_one_message_from_a_real_process(tmp_path):
    proc = run("train", str(spec_file(tmp_path, "tanh")))
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {tmp_path / 'net.toml'}: loss.kind: bce needs outputs in (0, 1)")


def test_bce_over_sigmoid_and_softmax_stays_supported(tmp_path):
    sigmoid = invoke("grad", str(spec_file(tmp_path, "sigmoid")), "--all")
    assert sigmoid.exit_code == 0, sigmoid.output
    # E = −log σ(−0.25) by hand
    assert f"E = {-math.log(1 / (1 + math.exp(0.25))):.8g}" in sigmoid.output
    softmax = (ROOT / "tests" / "test_lecture_plan.py").read_text()  # its BCE_SOFTMAX spec: bce over a softmax
    start = softmax.index('BCE_SOFTMAX = """') + len('BCE_SOFTMAX = """')
    path = tmp_path / "bce_softmax.toml"
    path.write_text(softmax[start : softmax.index('"""', start)])
    assert invoke("grad", str(path), "--all").exit_code == 0


def test_bce_over_a_formula_is_refused_where_an_output_at_the_spec_s_numbers_leaves_0_1(tmp_path):
    path = spec_file(tmp_path, "x*tanh(x) - 0.3")
    out = -0.25 * math.tanh(-0.25) - 0.3  # net = −0.5 · 0.5
    for command in (["show"], ["grad", "--all"], ["train"], ["grad", "w_o1_x1"]):
        result = invoke(command[0], str(path), *command[1:])
        refused(result, f"{path}: layers[1].activation", "bce needs outputs in (0, 1)", f"out_o1 = {out:.8g}")


def test_bce_over_a_formula_inside_0_1_is_accepted_even_where_floats_round_to_1(tmp_path):
    inside = invoke("grad", str(spec_file(tmp_path, "1/(1 + exp(-x))", weight=0.8)), "--all")
    assert inside.exit_code == 0, inside.output
    assert f"E = {-math.log(1 / (1 + math.exp(-0.4))):.8g}" in inside.output
    # σ(50) is 1.0 in float64 but inside (0, 1): accepted, and its loss is e^−50 to first order
    saturated = invoke("grad", str(spec_file(tmp_path, "1/(1 + exp(-x))", weight=100)), "--all")
    assert saturated.exit_code == 0, saturated.output
    loss = float(saturated.output.split("E = ")[1].split()[0])
    assert loss == pytest.approx(math.log1p(math.exp(-50)), abs=1e-15)  # finite, not the nan the user saw


def test_new_refuses_bce_over_an_output_outside_0_1():
    refused(invoke("new", "2-2-1", "--out", "tanh", "--loss", "bce"), "--out", "bce needs outputs in (0, 1)", "sigmoid")
