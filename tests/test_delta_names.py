"""A δ's name in claims, answer files and sheets: ``delta_`` and the name of the net input it is ∂E/∂ of.

A conv net's δ of z2_2_1_3 is ``delta_z2_2_1_3``, an rnn state's δ of z2_1_t3 is ``delta_z2_1_t3``; ``derive check``
keeps reading the neuron-label spellings that answer files wrote before (``delta_2_2_1_3``, ``delta_2_1_t3``).
Every expected value is PyTorch autograd's (tests/conv_oracle.py, tests/rnn_oracle.py), never derive's.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require_torch

from derive.app.cli import main

EXAMPLES = Path(__file__).parent.parent / "derive" / "examples"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def rnn_net(spec: dict) -> dict:
    """An rnn spec with numbers (input, rnn, dense) as rnn_oracle's plain data."""
    x, rnn, out = spec["layers"]
    bias = out.get("bias")
    if isinstance(bias, (int, float)):
        bias = [bias] * out["size"]
    return {
        "X": [x["values"]],
        "T": [out["targets"]],
        "rnn": {
            "W": rnn["weights"],
            "U": rnn["recurrent_weights"],
            "b": rnn.get("bias"),
            "activation": rnn["activation"],
        },
        "out": {"W": out["weights"], "b": bias, "activation": out["activation"]},
        "loss": spec["loss"]["kind"],
        "reduction": "sum",
    }


def conv_delta(want: dict, spec: dict, layer: int, c: int, r: int, k: int) -> float:
    """torch's ∂E/∂z{layer}_c_r_k (1-based) of the one sample."""
    shape = spec["layers"][1]["weights"]  # [out][in][kh][kw]
    side = spec["layers"][0]["shape"][1] - len(shape[0][0]) + 1  # a conv of stride 1, no padding
    return want["delta"][layer - 2][0][(c - 1) * side * side + (r - 1) * side + (k - 1)]


def verdicts(spec: str, *claims: str) -> tuple[int, list[dict]]:
    result = run("check", spec, *claims, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.output)["claims"]


def test_a_conv_delta_is_read_by_its_nets_name_and_by_the_old_label():
    torch = require_torch()
    from conv_oracle import compute, oracle_net

    spec = tomllib.loads((EXAMPLES / "tinyconv.toml").read_text())
    want = compute(torch, oracle_net(spec))
    checked = 0
    for c, r, k in [(1, 1, 1), (2, 2, 2), (1, 3, 2), (2, 1, 3)]:
        value = conv_delta(want, spec, 2, c, r, k)
        good, bad = f"{value:.9g}", f"{value * 1.001 + 1e-6:.9g}"
        new, old = f"delta_z2_{c}_{r}_{k}", f"delta_2_{c}_{r}_{k}"
        code, results = verdicts("tinyconv", f"{new}={good}", f"{old}={good}", f"δ2_{c}_{r}_{k}={good}")
        assert code == 0 and [x["verdict"] for x in results] == ["ok"] * 3, results
        code, results = verdicts("tinyconv", f"{new}={bad}", f"{old}={bad}")
        assert code == 1 and [x["verdict"] for x in results] == ["wrong"] * 2, results
        checked += value != 0
    assert checked >= 2  # some of them are not δs of 0 (a position no pool window passes on)


def test_an_rnn_delta_is_read_by_its_nets_name_and_by_the_old_label():
    torch = require_torch()
    from rnn_oracle import compute

    spec = tomllib.loads((EXAMPLES / "rnn.toml").read_text())
    want = compute(torch, rnn_net(spec))
    deltas = want["deltas"][0]  # T × H: ∂E/∂z_t
    for t, row in enumerate(deltas, start=1):
        for j, value in enumerate(row, start=1):
            good, bad = f"{value:.9g}", f"{-value:.9g}"
            new, old = f"delta_z2_{j}_t{t}", f"delta_2_{j}_t{t}"
            code, results = verdicts("rnn", f"{new}={good}", f"{old}={good}")
            assert code == 0 and [x["verdict"] for x in results] == ["ok", "ok"], results
            code, results = verdicts("rnn", f"{new}={bad}", f"{old}={bad}")
            assert code == 1 and [x["verdict"] for x in results] == ["wrong", "wrong"], results


def test_a_misspelled_delta_gets_one_line_and_the_new_spelling_suggested():
    result = CliRunner().invoke(main, ["check", "tinyconv", "delta_z2_2_2_9=0.1"])
    assert result.exit_code == 2
    assert "unknown name 'delta_z2_2_2_9'" in result.output
    assert "did you mean 'delta_z2_2_2_" in result.output
    result = CliRunner().invoke(main, ["check", "rnn", "delta_z2_1_t9=0.1"])
    assert result.exit_code == 2 and "did you mean 'delta_z2_1_t" in result.output


def claims_of(path: Path) -> dict[str, float]:
    lines = [line.split("=") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {name.strip(): float(value) for name, value in lines}


@pytest.mark.parametrize("example", ["tinyconv", "rnn"])
def test_a_sheet_and_its_answers_name_delta_by_its_net_and_grade_each_other(example, tmp_path):
    torch = require_torch()
    folder = tmp_path / "class"
    folder.mkdir()
    result = run("exercises", example, "--students", "2", "--seed", "3", "-o", str(folder), "--format", "html")
    assert result.exit_code == 0, result.output
    for k in ("01", "02"):
        spec_path = folder / f"student-{k}.toml"
        answers = folder / f"student-{k}-answers.txt"
        spec = tomllib.loads(spec_path.read_text())
        claims = claims_of(answers)
        deltas = [name for name in claims if name.startswith("delta")]
        assert deltas and all(name.startswith("delta_z2_") for name in deltas), claims
        sheet = (folder / f"student-{k}-sheet.html").read_text()
        key = (folder / f"student-{k}-key.html").read_text()
        for name in deltas:
            assert name in sheet and name in key  # the sheet shows the line to hand in, the key the answer
            if example == "tinyconv":
                from conv_oracle import compute, oracle_net

                c, r, col = (int(i) for i in name.removeprefix("delta_z2_").split("_"))
                want = conv_delta(compute(torch, oracle_net(spec)), spec, 2, c, r, col)
                old = f"delta_2_{c}_{r}_{col}"
            else:
                from rnn_oracle import compute

                j, t = name.removeprefix("delta_z2_").split("_t")
                want = compute(torch, rnn_net(spec))["deltas"][0][int(t) - 1][int(j) - 1]
                old = f"delta_2_{j}_t{t}"
            assert claims[name] == pytest.approx(want, rel=1e-9, abs=1e-12), name
            # a teacher's older answer file, with the label spelling, grades the same
            code, results = verdicts(str(spec_path), f"{old}={answers_value(answers, name)}")
            assert code == 0 and results[0]["verdict"] == "ok", results
        graded = run("check", str(spec_path), "--claims", str(answers))
        assert graded.exit_code == 0, graded.output
        assert f"{len(claims)} ok, 0 wrong" in graded.output


def answers_value(path: Path, name: str) -> str:
    """The value as the answers file writes it (every digit)."""
    for line in path.read_text().splitlines():
        if line.split("=")[0].strip() == name:
            return line.split("=", 1)[1].strip()
    raise AssertionError(name)
