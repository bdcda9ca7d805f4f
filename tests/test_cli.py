"""The command line, through click's CliRunner and a real subprocess."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from click.testing import CliRunner
from oracles import backprop, mazur, train

from derive.app.cli import main

NAMES = ["w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2"]


def invoke(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_grad_w5_shows_factors_symbolic_then_numeric():
    out = invoke("grad", "mazur", "w5")
    assert "1 path from w5 to E" in out
    assert "∂E/∂w5 = ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5" in out
    assert "∂out_o1/∂net_o1 = out_o1*(1 - out_o1)" in out
    assert "= 0.75136507*(1 - 0.75136507)" in out
    assert "0.082167041" in out
    assert "closed form:" in out


def test_grad_w1_lists_two_paths_and_their_sum():
    out = invoke("grad", "mazur", "w1")
    assert "2 paths from w1 to E" in out
    assert "path 1: w1 → net_h1 → out_h1 → net_o1 → out_o1 → E" in out
    assert "path 2: w1 → net_h1 → out_h1 → net_o2 → out_o2 → E" in out
    assert "sum over paths" in out
    assert "0.00043856773" in out
    assert "δ_h1 = ∂E/∂net_h1 = out_h1*(1 - out_h1)*(w5*δ_o1 + w7*δ_o2)" in out


def test_grad_json_has_the_promised_fields_and_the_expression_parses_back():
    data = json.loads(invoke("grad", "mazur", "w1", "--format", "json"))
    assert data["parameter"] == "w1"
    _, grad, _ = backprop(mazur())
    assert data["value"] == pytest.approx(grad[0], rel=1e-12)
    assert data["latex"].startswith("i_{1}") or "i_{1}" in data["latex"]
    names = ["i1", "i2", *NAMES, "target_o1", "target_o2"]
    symbols = {n: sp.Symbol(n) for n in names}
    expr = sp.sympify(data["expression"], locals=symbols)
    assert expr.free_symbols <= set(symbols.values())
    values = {symbols["i1"]: 0.05, symbols["i2"]: 0.10, symbols["target_o1"]: 0.01, symbols["target_o2"]: 0.99}
    values |= {symbols[k]: v for k, v in zip(NAMES, mazur().flat())}
    assert float(expr.evalf(subs=values)) == pytest.approx(grad[0], rel=1e-12)
    steps = data["steps"]
    assert [s["kind"] for s in steps] == ["path", "path", "sum"]
    for step in steps:
        assert {"latex", "value"} <= step.keys()
    assert len(steps[0]["factors"]) == 5
    assert sum(s["value"] for s in steps[:2]) == pytest.approx(steps[2]["value"], rel=1e-12)
    assert steps[2]["terms"][0]["value"] == steps[0]["value"]


@pytest.mark.parametrize(("param", "kind"), [("net_h1", "net"), ("out_o1", "out"), ("out_h1", "out"), ("i1", "input")])
def test_grad_of_intermediate_quantities(param, kind):
    data = json.loads(invoke("grad", "mazur", param, "--format", "json"))
    assert data["kind"] == kind
    _, _, inner = backprop(mazur())
    if param == "net_h1":
        assert data["value"] == pytest.approx(inner["delta"][1][0], rel=1e-12)  # ∂E/∂net is δ
    if param == "out_o1":
        assert data["value"] == pytest.approx(inner["a"][2][0] - 0.01, rel=1e-12)


def test_grad_all_json():
    data = json.loads(invoke("grad", "mazur", "--all", "--format", "json"))
    e, grad, _ = backprop(mazur())
    assert data["loss"] == pytest.approx(e, rel=1e-12)
    assert list(data["gradients"]) == NAMES
    assert np.allclose(list(data["gradients"].values()), grad, rtol=1e-12, atol=0)


def test_grad_all_text():
    out = invoke("grad", "mazur", "--all")
    assert "∂E/∂b1" in out and "(4 paths)" in out


def test_many_paths_fold_into_delta_form():
    spec = "\n".join(
        ["name = 'deep'", "[loss]", "kind = 'sse'", "[[layers]]", "size = 2", "values = [0.1, 0.2]"]
        + ["[[layers]]\nsize = 3\nactivation = 'tanh'"] * 3
        + ["[[layers]]\nsize = 2\nactivation = 'linear'\ntargets = [0.0, 1.0]"]
    )
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "deep.toml")
        Path(path).write_text(spec)
        result = runner.invoke(main, ["grad", path, "w2_1_1"])
        assert result.exit_code == 0, result.output
        assert "18 paths from w2_1_1 to E, folded into δ form" in result.output
        assert "δ2_1 = ∂E/∂z2_1" in result.output
        data = json.loads(runner.invoke(main, ["grad", path, "w2_1_1", "--format", "json"]).output)
        assert data["form"] == "delta"
        assert data["paths"] == 18


def test_train_json_matches_the_oracle():
    data = json.loads(invoke("train", "mazur", "--steps", "100", "--format", "json"))
    trained, history = train(mazur(), 100)
    assert data["steps"] == 100
    assert data["loss_before"] == pytest.approx(history[0], rel=1e-12)
    assert data["loss"] == pytest.approx(history[-1], rel=1e-10)
    assert np.allclose(list(data["parameters"].values()), trained.flat(), rtol=1e-10)
    assert list(data["parameters"]) == NAMES
    _, acts = __import__("oracles").forward(trained)
    assert np.allclose(data["outputs"], acts[-1], rtol=1e-10)


def test_train_text():
    out = invoke("train", "mazur", "--steps", "10000")
    assert "loss after:  3.5101878e-5" in out.replace("3.5101878e-05", "3.5101878e-5")


def test_show():
    out = invoke("show", "mazur")
    assert "net_h1 = b1 + i1*w1 + i2*w2 = 0.35 + 0.05*0.15 + 0.1*0.2 = 0.3775" in out
    assert "out_o1 = 1/(1 + exp(-net_o1))" in out and "0.75136507" in out
    assert "0.29837111" in out
    data = json.loads(invoke("show", "mazur", "--format", "json"))
    assert data["layers"][2]["neurons"][0]["out_value"] == pytest.approx(0.7513650695523157, rel=1e-12)


def test_show_uses_the_spec_notation_of_000():
    out = invoke("show", "chain_221")
    assert "z1 = b1 + w11*x1 + w12*x2" in out
    assert "a3 = 1/(1 + exp(-z3))" in out


def test_examples():
    out = invoke("examples")
    for name in ("mazur", "chain_221", "nielsen_tanh", "softmax", "swish"):
        assert name in out
    toml = invoke("examples", "mazur")
    assert 'weight_names = [["w5", "w6"], ["w7", "w8"]]' in toml


@pytest.mark.parametrize("name", ["mazur", "chain_221", "nielsen_tanh", "softmax", "swish"])
def test_every_example_derives_and_trains(name):
    invoke("grad", name, "--all")
    invoke("train", name, "--steps", "5")
    invoke("show", name)


def test_python_dash_m_and_console_script():
    proc = subprocess.run(
        [sys.executable, "-m", "derive", "grad", "mazur", "w5", "--format", "json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["parameter"] == "w5"
    script = subprocess.run(
        [str(__import__("pathlib").Path(sys.executable).parent / "derive"), "--help"], capture_output=True, text=True
    )
    assert script.returncode == 0 and "grad" in script.stdout


def test_help_does_not_import_sympy():
    code = "import sys; from derive.app.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\nprint('sympy' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("False")
