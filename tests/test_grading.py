"""Grading a teacher can trust: exact verdicts, required digits, named mistakes, the gradebook, Moodle.

The oracle is :class:`MazurExact`, Mazur's 2-2-2 network worked in mpmath at 60 digits from the article's
decimals (written here, never read from derive). Every mistake is computed by hand the mistaken way in
this file: one path's product, a chain product without σ′, an update with +, the loss without its ½,
hidden δs from the already-updated output weights, the rounded intermediates, and so on.
"""

import base64
import csv
import io
import json
import re
import shutil
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

import mpmath
import pytest
from click.testing import CliRunner

from derive.app.cli import main

DPS = 60


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def checked(*args):
    """`derive check … --format json`: the claims' verdicts by position, and the exit code."""
    result = run("check", *args, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)["claims"], result.exit_code


def digits(value, k, rounding=ROUND_HALF_UP):
    """An mpmath value rounded (or truncated) to k significant digits, as a claim writes it."""
    with localcontext(prec=2 * DPS):
        d = Decimal(mpmath.nstr(value, DPS, min_fixed=-100, max_fixed=100))
        return format(d.quantize(Decimal(1).scaleb(d.adjusted() - k + 1), rounding=rounding), "f")


def off_in_last_digit(text, by):
    """The claim text with ``by`` added in its last digit (0.1234 + 2 → 0.1236)."""
    d = Decimal(text)
    with localcontext(prec=2 * DPS):
        return format(d + by * Decimal(1).scaleb(d.as_tuple().exponent), "f")


# --------------------------------------------------------------------------
# the oracle: Mazur's network in mpmath, from the article's decimals


def sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


class MazurExact:
    """Forward and backward pass of Mazur's network at 60 digits; w[k] are w1 … w8."""

    def __init__(self, w=None, i=("0.05", "0.10"), t=("0.01", "0.99")):
        mpmath.mp.dps = DPS
        m = mpmath.mpf
        self.i = [m(x) for x in i]
        self.t = [m(x) for x in t]
        self.b1, self.b2 = m("0.35"), m("0.60")
        self.w = w or [m(x) for x in ("0.15", "0.20", "0.25", "0.30", "0.40", "0.45", "0.50", "0.55")]
        self.eta = m("0.5")
        w1, w2, w3, w4, w5, w6, w7, w8 = self.w
        self.net_h = [w1 * self.i[0] + w2 * self.i[1] + self.b1, w3 * self.i[0] + w4 * self.i[1] + self.b1]
        self.out_h = [sigmoid(n) for n in self.net_h]
        self.net_o = [
            w5 * self.out_h[0] + w6 * self.out_h[1] + self.b2,
            w7 * self.out_h[0] + w8 * self.out_h[1] + self.b2,
        ]
        self.out_o = [sigmoid(n) for n in self.net_o]
        self.E = sum((t - o) ** 2 / 2 for t, o in zip(self.t, self.out_o))
        self.dE_dout_o = [o - t for o, t in zip(self.out_o, self.t)]
        self.slope_o = [o * (1 - o) for o in self.out_o]
        self.slope_h = [o * (1 - o) for o in self.out_h]
        self.delta_o = [d * s for d, s in zip(self.dE_dout_o, self.slope_o)]
        self.delta_h = self.hidden_deltas(self.w[4:])

    def hidden_deltas(self, upper):
        w5, w6, w7, w8 = upper
        return [
            (self.delta_o[0] * w5 + self.delta_o[1] * w7) * self.slope_h[0],
            (self.delta_o[0] * w6 + self.delta_o[1] * w8) * self.slope_h[1],
        ]

    def gradients(self, delta_h=None):
        """∂E/∂w1 … ∂E/∂w8 (BP4: δ_j · out_k)."""
        dh = delta_h or self.delta_h
        hidden = [dh[0] * self.i[0], dh[0] * self.i[1], dh[1] * self.i[0], dh[1] * self.i[1]]
        output = [
            self.delta_o[0] * self.out_h[0],
            self.delta_o[0] * self.out_h[1],
            self.delta_o[1] * self.out_h[0],
            self.delta_o[1] * self.out_h[1],
        ]
        return hidden + output

    def step(self):
        return MazurExact([w - self.eta * g for w, g in zip(self.w, self.gradients())], self.i, self.t)


@pytest.fixture(scope="module")
def mazur():
    return MazurExact()


# --------------------------------------------------------------------------
# every digit right


def test_25_digit_claims_are_judged_exactly_right_and_off_by_two_in_the_last_digit(mazur):
    quantities = {
        "net_o1": mazur.net_o[0],
        "out_o1": mazur.out_o[0],
        "E": mazur.E,
        "delta_h1": mazur.delta_h[0],
        "dE/dw5": mazur.gradients()[4],
        "dE/dw1": mazur.gradients()[0],
        "dout_o1/dnet_o1": mazur.slope_o[0],
    }
    right = [f"{name}={digits(v, 25)}" for name, v in quantities.items()]
    results, code = checked("mazur", *right)
    assert code == 0 and all(r["verdict"] == "ok" and r["digits"] == 25 for r in results), results
    for r, (_name, value) in zip(results, quantities.items()):
        assert r["claimed_text"] == digits(value, 25)  # the claim exactly as written
        assert isinstance(r["claimed"], float)  # and still a number
    for by in (2, -2):
        wrong = [f"{name}={off_in_last_digit(digits(v, 25), by)}" for name, v in quantities.items()]
        results, code = checked("mazur", *wrong)
        assert code == 1 and all(r["verdict"] == "wrong" for r in results), results
        assert all(r["digits"] == 24 for r in results)


def test_a_50_digit_claim_is_judged_exactly(mazur):
    claim = digits(mazur.out_h[0], 50)
    results, _code = checked("mazur", f"out_h1={claim}", f"out_h1={off_in_last_digit(claim, 1)}")
    assert [r["verdict"] for r in results] == ["ok", "wrong"]


def test_the_spec_numbers_are_the_decimals_written_0_3775_is_exact():
    # 0.05·0.15 + 0.10·0.20 + 0.35 is 0.3775 exactly (in floats 0.37749999999999995)
    results, _code = checked("mazur", "net_h1=0.3775", "net_h1=0.3774", "net_h1=0.37750000000000000000000000000")
    assert [r["verdict"] for r in results] == ["ok", "wrong", "ok"]
    assert results[0]["match"] == "exact"


MICROGRAD = """
name = "micrograd_neuron"
[loss]
expr = "o"
[[layers]]
names = ["x1", "x2"]
values = [2.0, 0.0]
[[layers]]
names = ["neuron"]
net_names = ["n"]
out_names = ["o"]
activation = "tanh"
weights = [[-3.0, 1.0]]
weight_names = [["w1", "w2"]]
bias = 6.8813735870195432
bias_names = "b"
"""


def test_micrograds_neuron_with_the_bias_as_written_and_a_loss_without_targets(tmp_path):
    spec = tmp_path / "neuron.toml"
    spec.write_text(MICROGRAD)
    mpmath.mp.dps = DPS
    n = mpmath.mpf("6.8813735870195432") - 6
    slope = 1 - mpmath.tanh(n) ** 2  # 0.49999999999999987642…
    assert digits(slope, 20) == "0.49999999999999987642"
    results, _code = checked(
        spec, "do/dn=0.5000000000000000", f"do/dn={digits(slope, 20)}", f"delta_n={digits(slope, 20)}", "δ_n=0.5"
    )
    assert [r["verdict"] for r in results] == ["wrong", "ok", "ok", "ok"]  # δ by its net's name, as the lecture
    assert results[1]["quantity"] == "do/dn" and results[2]["quantity"] == "delta_neuron"


def test_names_as_the_lecture_typesets_them(mazur, tmp_path):
    claims = {
        "w_5": ("0.4", "w5"),
        "w_{5}": ("0.4", "w5"),
        "w₅": ("0.4", "w5"),
        r"\delta_{o1}": (digits(mazur.delta_o[0], 9), "delta_o1"),
        "δ_{h1}": (digits(mazur.delta_h[0], 9), "delta_h1"),
        r"\mathrm{out}_{o1}": (digits(mazur.out_o[0], 9), "out_o1"),
        "E_{total}": (digits(mazur.E, 9), "E"),
        "dE/dw_5": (digits(mazur.gradients()[4], 9), "dE/dw5"),
        "∂E/∂w_{1}": (digits(mazur.gradients()[0], 9), "dE/dw1"),
        "dout_{o1}/dnet_{o1}": (digits(mazur.slope_o[0], 9), "dout_o1/dnet_o1"),
        "w_5'": (digits(mazur.step().w[4], 9), "w5@1"),
    }
    results, code = checked("mazur", *(f"{name}={value}" for name, (value, _) in claims.items()))
    assert code == 0, results
    assert [r["quantity"] for r in results] == [q for _, q in claims.values()]
    assert [r["name"] for r in results] == list(claims)  # reported as written
    listing = tmp_path / "claims.txt"  # and in a claims file
    listing.write_text("".join(f"{name} = {value}\n" for name, (value, _) in claims.items()))
    results, code = checked("mazur", "--claims", listing)
    assert code == 0 and [r["quantity"] for r in results] == [q for _, q in claims.values()]
    # chain_221 typesets neuron n1's δ as δ_1 (its net is z1), w11 as w_{11}; Nielsen's δ^2_1 is neuron 2_1's
    for spec, name, quantity in (
        ("chain_221", "delta_1", "delta_n1"),
        ("chain_221", "δ_1", "delta_n1"),
        ("chain_221", "dE/dw_{11}", "dE/dw11"),
        ("nielsen_tanh", r"\delta^{2}_{1}", "delta_2_1"),
        ("nielsen_tanh", "delta2_1", "delta_2_1"),
        ("nielsen_tanh", "w^2_{1,1}", "w2_1_1"),
        ("nielsen_tanh", "a²₁", "a2_1"),
    ):
        (result,), _ = checked(spec, f"{name}=0.1")
        assert result["quantity"] == quantity, (spec, name)


def test_every_symbol_the_lecture_typesets_is_a_claim_name():
    from derive.app.api import Model
    from derive.check.claims import spelled

    for example in ("mazur", "chain_221", "nielsen_tanh", "softmax"):
        network = Model.load(example).network
        claims = [f"{spelled(latex)}=0.1" for latex in network.latex.values()]
        assert len(claims) > 20
        results, _ = checked(example, *claims)  # every one resolves (an unknown name exits 2), to its own symbol
        expected = [
            f"delta_{network.neuron_of(s).label}"
            if s.name in network.info and network.info[s.name].kind == "delta"
            else s.name
            for s in network.latex
        ]
        assert [r["quantity"] for r in results] == expected


def test_a_claim_after_updates_beyond_float_precision_is_replayed_at_high_precision(mazur):
    after = mazur.step().step().step()
    claim = digits(after.E, 25)
    results, _code = checked(
        "mazur", f"E@3={claim}", f"E@3={off_in_last_digit(claim, 2)}", f"w1@3={digits(after.w[0], 25)}"
    )
    assert [r["verdict"] for r in results] == ["ok", "wrong", "ok"]


def test_adam_after_two_steps_is_replayed_at_high_precision(tmp_path):
    # torch.optim.Adam's rule, worked in mpmath at 60 digits from the decimals (biases not trained)
    mpmath.mp.dps = DPS
    m = mpmath.mpf
    lr, b1, b2, eps = m("0.01"), m("0.9"), m("0.999"), m("1e-8")
    net = MazurExact()
    avg, sq = [m(0)] * 8, [m(0)] * 8
    for t in (1, 2):
        g = net.gradients()
        avg = [b1 * a + (1 - b1) * gi for a, gi in zip(avg, g)]
        sq = [b2 * v + (1 - b2) * gi**2 for v, gi in zip(sq, g)]
        step = [lr / (1 - b1**t) * a / (mpmath.sqrt(v) / mpmath.sqrt(1 - b2**t) + eps) for a, v in zip(avg, sq)]
        net = MazurExact([w - s for w, s in zip(net.w, step)])
    spec = tmp_path / "adam.toml"
    text = run("examples", "mazur").output
    spec.write_text(text.replace("learning_rate = 0.5", 'learning_rate = 0.01\noptimizer = "adam"'))
    claims = [f"E@2={digits(net.E, 25)}", f"w5@2={digits(net.w[4], 25)}", f"exp_avg(w5)@2={digits(avg[4], 25)}"]
    results, code = checked(spec, *claims)
    assert code == 0, results
    wrong = [f"{c.split('=')[0]}={off_in_last_digit(c.split('=')[1], 2)}" for c in claims]
    results, code = checked(spec, *wrong)
    assert [r["verdict"] for r in results] == ["wrong"] * 3


def test_beyond_the_replay_budget_it_says_so_and_exits_2():
    result = run("check", "mazur", "E@1000=0.1234567890123456789012345")
    assert result.exit_code == 2
    assert "budget" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_a_loss_near_its_minimum_after_updates_is_never_judged_from_float64s_cancellation(tmp_path):
    # η = 30: after 3,000 updates E ≈ 1.5e-11 is (t − out)²/2 with out within 6e-6 of t, and float64's
    # E is 2.6e-11 (relative) off: its 11th digit is wrong. A verdict agrees with the oracle, or is refused
    mpmath.mp.dps = DPS
    net = MazurExact()
    net.eta = mpmath.mpf(30)
    for _ in range(3000):
        eta = net.eta
        net = net.step()
        net.eta = eta
    spec = tmp_path / "fast.toml"
    spec.write_text(run("examples", "mazur").output.replace("learning_rate = 0.5", "learning_rate = 30"))
    for k in range(6, 13):
        right = digits(net.E, k)
        for claim, verdict in ((right, 0), (off_in_last_digit(right, 1), 1), (off_in_last_digit(right, -1), 1)):
            result = run("check", spec, f"E@3000={claim}", "--min-digits", k)  # correctly rounded alone
            assert result.exit_code in (verdict, 2), (claim, result.output)
            if result.exit_code == 2:
                assert "budget" in result.output and "Traceback" not in result.output
        if k <= 7:  # float64's training still decides a short claim (the value at its parameters, exactly)
            assert run("check", spec, f"E@3000={right}", "--min-digits", k).exit_code == 0


def test_adams_buffer_near_a_minimum_is_never_judged_from_float64s_cancelled_gradients(tmp_path):
    # torch's Adam at η = 0.2 (the mpmath loop of the test above): after 1,500 updates exp_avg(w5) ≈ 4.4e-9 is an
    # average of gradients that cancel, and float64's is 6e-12 (relative) off: its 12th digit is wrong
    mpmath.mp.dps = DPS
    m = mpmath.mpf
    lr, b1, b2, eps = m("0.2"), m("0.9"), m("0.999"), m("1e-8")
    net = MazurExact()
    avg, sq = [m(0)] * 8, [m(0)] * 8
    for t in range(1, 1501):
        g = net.gradients()
        avg = [b1 * a + (1 - b1) * gi for a, gi in zip(avg, g)]
        sq = [b2 * v + (1 - b2) * gi**2 for v, gi in zip(sq, g)]
        step = [lr / (1 - b1**t) * a / (mpmath.sqrt(v) / mpmath.sqrt(1 - b2**t) + eps) for a, v in zip(avg, sq)]
        net = MazurExact([w - s for w, s in zip(net.w, step)])
    spec = tmp_path / "adam.toml"
    text = run("examples", "mazur").output
    spec.write_text(text.replace("learning_rate = 0.5", 'learning_rate = 0.2\noptimizer = "adam"'))
    for name, value in (("exp_avg(w5)@1500", avg[4]), ("exp_avg_sq(w5)@1500", sq[4]), ("E@1500", net.E)):
        for k in range(3, 13):
            right = digits(value, k)
            for claim, verdict in ((right, 0), (off_in_last_digit(right, 1), 1), (off_in_last_digit(right, -1), 1)):
                result = run("check", spec, f"{name}={claim}", "--min-digits", k)
                assert result.exit_code in (verdict, 2), (name, claim, result.output)
            if k <= 3:  # a short claim is still decided by float64's training
                assert run("check", spec, f"{name}={right}", "--min-digits", k).exit_code == 0, name


def test_float64_decides_a_short_claim_after_many_updates():
    results, _code = checked("mazur", "E@9999=0.0000351085")
    assert results[0]["verdict"] == "ok"


def shown(value, k):
    """As derive prints a number to k digits: correctly rounded, trailing zeros dropped."""
    text = digits(value, k)
    return text.rstrip("0").rstrip(".") if "." in text else text


@pytest.mark.parametrize("k", [20, 50])
def test_grad_prints_up_to_50_digits_each_correctly_rounded(mazur, k):
    result = run("grad", "mazur", "w1", "--digits", k)
    assert result.exit_code == 0, result.output
    text = result.output.replace("\n", " ")
    g = mazur.gradients()[0]
    path1 = mazur.delta_o[0] * mazur.w[4] * mazur.slope_h[0] * mazur.i[0]
    for value in (mazur.out_o[0], mazur.out_h[0], mazur.slope_o[0], mazur.slope_h[0], path1, g, mazur.delta_h[0]):
        assert shown(value, k) in text, shown(value, k)
    assert f"∂E/∂w1 = {shown(g, k)}" in text
    data = json.loads(run("grad", "mazur", "w1", "--digits", k, "--format", "json").output)
    assert data["value_text"] == shown(g, k) and isinstance(data["value"], float)  # the number, and its digits


def test_more_digits_than_a_float_for_every_gradient_at_once_is_refused():
    for args in (["--all"], ["W3"]):
        result = run("grad", "mazur", *args, "--digits", 30)
        assert result.exit_code == 2 and "at most 17 digits" in result.output


# --------------------------------------------------------------------------
# required digits


def test_min_digits_requires_correctly_rounded_answers(mazur):
    g1 = mazur.gradients()[0]
    k = next(k for k in range(6, 20) if digits(mazur.out_h[0], k) != digits(mazur.out_h[0], k, ROUND_DOWN))
    rounded, truncated = digits(mazur.out_h[0], k), digits(mazur.out_h[0], k, ROUND_DOWN)
    lenient, _ = checked("mazur", f"out_h1={rounded}", f"out_h1={truncated}", f"dE/dw1={digits(g1, 3)}")
    assert [r["verdict"] for r in lenient] == ["ok", "ok", "ok"]
    assert lenient[1]["diagnosis"] == "truncated" and lenient[0]["diagnosis"] is None
    strict, code = checked(
        "mazur", f"out_h1={rounded}", f"out_h1={truncated}", f"dE/dw1={digits(g1, 3)}", "--min-digits", "6"
    )
    assert code == 1
    assert [r["verdict"] for r in strict] == ["ok", "wrong", "wrong"]
    assert [r["diagnosis"] for r in strict] == [None, "truncated", "too_few_digits"]


def test_an_exactly_short_value_is_never_too_few_digits():
    results, _code = checked("mazur", "i1=0.05", "w1=0.15", "net_h1=0.3775", "w1'=0.15", "--min-digits", "6")
    assert [r["verdict"] for r in results] == ["ok", "ok", "ok", "wrong"]
    assert results[3]["diagnosis"] == "too_few_digits"  # w1 not updated at all: 0.1497807…


def test_a_zero_with_no_significant_digit_never_passes_as_a_truncation():
    results, code = checked("mazur", "dE/dw5@1=0.0", "dE/dw5=0.0")
    assert code == 1 and [r["verdict"] for r in results] == ["wrong", "wrong"]
    assert [r["digits"] for r in results] == [0, 0]  # no digit of it agrees (0.0831…, 0.0822…)


@pytest.fixture(scope="module")
def class_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class") / "class"
    result = run("exercises", "mazur", "--students", 3, "--seed", 4, "-o", folder, "--format", "html")
    assert result.exit_code == 0, result.output
    return folder


def answers_of(folder, label):
    lines = (folder / f"student-{label}-answers.txt").read_text().splitlines()
    return dict(line.split(" = ") for line in lines if line and not line.startswith("#"))


def test_a_variant_records_the_required_digits_and_check_enforces_them(class_set, tmp_path):
    spec = class_set / "student-01.toml"
    assert "[grading]\ndigits = 6" in spec.read_text()
    answers = answers_of(class_set, "01")
    short = {
        name: str(Decimal(v).quantize(Decimal(1).scaleb(Decimal(v).adjusted() - 1))) for name, v in answers.items()
    }
    results, code = checked(spec, *(f"{n}={v}" for n, v in short.items()))
    assert code == 1 and all(r["diagnosis"] == "too_few_digits" for r in results), results
    results, code = checked(spec, *(f"{n}={v}" for n, v in answers.items()))
    assert code == 0
    # a variant written before [grading] existed stays lenient
    old = tmp_path / "student-01.toml"
    old.write_text(spec.read_text().replace("[grading]\ndigits = 6\n", ""))
    results, code = checked(old, *(f"{n}={v}" for n, v in short.items()))
    assert code == 0


def test_the_sheet_asks_for_correctly_rounded_answers(class_set):
    sheet = (class_set / "student-01-sheet.html").read_text()
    assert "correctly rounded" in sheet and "rounded or truncated" not in sheet


# --------------------------------------------------------------------------
# named mistakes, each computed by hand the mistaken way


def diagnosis_of(*claims, spec="mazur"):
    results, _ = checked(spec, *claims)
    return [r["diagnosis"] for r in results]


def test_one_path(mazur):
    # ∂E/∂w1 through out_o1 alone: δ_o1 · w5 · σ′(net_h1) · i1
    path = mazur.delta_o[0] * mazur.w[4] * mazur.slope_h[0] * mazur.i[0]
    assert diagnosis_of(f"dE/dw1={digits(path, 9)}") == ["one_path"]


def test_missing_activation_derivative(mazur):
    without = mazur.dE_dout_o[0] * mazur.out_h[0]  # ∂E/∂w5 without σ′(net_o1)
    hidden = mazur.delta_h[0] / mazur.slope_h[0]  # δ_h1 without σ′(net_h1)
    assert (
        diagnosis_of(f"dE/dw5={digits(without, 9)}", f"delta_h1={digits(hidden, 9)}")
        == ["missing_activation_derivative"] * 2
    )


def test_sign(mazur):
    plus = mazur.w[4] + mazur.eta * mazur.gradients()[4]
    flipped = -mazur.delta_h[0]
    assert diagnosis_of(f"w5'={digits(plus, 9)}", f"delta_h1={digits(flipped, 9)}") == ["sign", "sign"]


def test_loss_factor(mazur):
    without_half = sum((t - o) ** 2 for t, o in zip(mazur.t, mazur.out_o))
    assert (
        diagnosis_of(f"E={digits(without_half, 9)}", f"dE/dw5={digits(2 * mazur.gradients()[4], 9)}")
        == ["loss_factor"] * 2
    )


def test_updated_weights_too_early(mazur):
    # the hidden δs from the already-updated output weights, then every weight updated, then E again
    g = mazur.gradients()
    upper = [w - mazur.eta * gw for w, gw in zip(mazur.w[4:], g[4:])]
    early = mazur.gradients(mazur.hidden_deltas(upper))
    updated = MazurExact([w - mazur.eta * gw for w, gw in zip(mazur.w[:4], early[:4])] + upper)
    assert digits(updated.E, 9) == "0.291027924"  # what Mazur's article prints
    assert diagnosis_of("E'=0.291027924") == ["updated_weights_too_early"]


def test_rounded_intermediate(mazur):
    h1, h2 = digits(mazur.out_h[0], 3), digits(mazur.out_h[1], 3)  # 0.593, 0.597
    net = mpmath.mpf(h1) * mazur.w[4] + mpmath.mpf(h2) * mazur.w[5] + mazur.b2  # from the rounded outs
    claim = digits(net, 6)
    assert claim != digits(mazur.net_o[0], 6)
    assert diagnosis_of(f"out_h1={h1}", f"out_h2={h2}", f"net_o1={claim}") == [None, None, "rounded_intermediate"]


def test_rounded_intermediate_before_truncated_a_textbook_err6(tmp_path):
    # Err6 = 0.1311 from a rounded O6 = 0.474 (the true 0.131169 rounds to 0.1312): both codes fit, rounding first
    spec = """
name = "textbook"
[loss]
kind = "half_sse"
[[layers]]
names = ["x"]
values = [1.0]
[[layers]]
names = ["o"]
activation = "sigmoid"
weights = [[-0.1043]]
bias = 0.0
targets = [1.0]
"""
    mpmath.mp.dps = DPS
    o = sigmoid(mpmath.mpf("-0.1043"))
    assert digits(o, 3) == "0.474"
    err = mpmath.mpf("0.474") * (1 - mpmath.mpf("0.474")) * (1 - mpmath.mpf("0.474"))  # δ from the rounded O6
    assert digits(err, 4) == "0.1311"
    true = o * (1 - o) * (1 - o)
    assert digits(true, 4) == "0.1312" and digits(true, 4, ROUND_DOWN) == "0.1311"
    path = Path(tempfile.mkdtemp()) / "textbook.toml"
    path.write_text(spec)
    try:
        results, _ = checked(path, "out_o=0.474", "delta_o=-0.1311")
        assert results[1]["verdict"] == "ok" and results[1]["diagnosis"] == "rounded_intermediate"
        results, _code = checked(path, "out_o=0.474", "delta_o=-0.1311", "--min-digits", "4")
        assert results[1]["verdict"] == "wrong" and results[1]["diagnosis"] == "rounded_intermediate"
    finally:
        shutil.rmtree(path.parent)


def test_wrong_input_and_transposed_weight(mazur):
    g = mazur.gradients()
    o1 = mpmath.mpf("0.76")
    e_from_wrong = ((mazur.t[0] - o1) ** 2 + (mazur.t[1] - mazur.out_o[1]) ** 2) / 2
    assert diagnosis_of(
        "out_o1=0.760000",
        f"E={digits(e_from_wrong, 9)}",
        f"dE/dw2={digits(g[2], 9)}",  # ∂E/∂w3's value for ∂E/∂w2
    ) == [None, "wrong_input", "transposed_weight"]


def test_no_learning_rate(mazur, tmp_path):
    # at Mazur's η = 0.5, w − ∂E/∂w is also w − η·2∂E/∂w (loss_factor, first in the table): take η = 0.3
    spec = tmp_path / "slow.toml"
    text = run("examples", "mazur").output
    spec.write_text(text.replace("learning_rate = 0.5", "learning_rate = 0.3"))
    g = mazur.gradients()
    assert diagnosis_of(f"w5'={digits(mazur.w[4] - g[4], 9)}", spec=spec) == ["no_learning_rate"]
    assert diagnosis_of(f"w5'={digits(mazur.w[4] - g[4], 9)}") == ["loss_factor"]  # η = 0.5: the first code


def test_wrong_sample(tmp_path):
    spec = """
name = "two"
[loss]
kind = "half_sse"
[[layers]]
names = ["x1", "x2"]
values = [[0.05, 0.10], [0.30, 0.20]]
[[layers]]
names = ["o"]
activation = "sigmoid"
weights = [[0.40, 0.45]]
bias = 0.6
targets = [[0.2], [0.7]]
"""
    mpmath.mp.dps = DPS
    second = sigmoid(
        mpmath.mpf("0.40") * mpmath.mpf("0.30") + mpmath.mpf("0.45") * mpmath.mpf("0.20") + mpmath.mpf("0.6")
    )
    path = tmp_path / "two.toml"
    path.write_text(spec)
    assert diagnosis_of(f"out_o[1]={digits(second, 9)}", spec=path) == ["wrong_sample"]


def test_the_text_says_each_diagnosis_in_a_sentence(mazur):
    path = mazur.delta_o[0] * mazur.w[4] * mazur.slope_h[0] * mazur.i[0]
    result = run("check", "mazur", f"dE/dw1={digits(path, 9)}", "E'=0.291027924")
    assert result.exit_code == 1
    assert "one_path: one path's contribution only" in result.output
    assert "updated_weights_too_early: computed with weights already updated" in result.output


# --------------------------------------------------------------------------
# the gradebook


def test_the_gradebook_has_ok_missing_and_unreadable_rows(class_set, tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    answers = answers_of(class_set, "01")
    (submissions / "student-01.txt").write_text("".join(f"{n} = {v}\n" for n, v in answers.items()))
    second = answers_of(class_set, "02")
    # student 2: a rounded E (too few digits), ∂E/∂w8 with the sign flipped, the rest left out
    e = Decimal(second["E"])
    lines = [f"E = {e.quantize(Decimal(1).scaleb(e.adjusted() - 2))}", f"dE/dw8 = {-Decimal(second['dE/dw8'])}"]
    (submissions / "student-02.txt").write_bytes(("\n".join(lines) + "\n").encode())
    (submissions / "student-03.txt").write_bytes(b"\x00\x01 not a claims file =")
    (submissions / "README").write_text("not a student's\n")
    out = tmp_path / "grades.csv"
    result = run("grade", class_set, submissions, "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    questions = ["out_o2", "E", "dE/dw8", "delta_h2", "dE/dw1", "w1'"]
    assert list(rows[0].keys()) == ["student", "status", "score", "total", "reason", *questions]
    by = {r["student"]: r for r in rows}
    assert by["01"]["status"] == "ok" and by["01"]["score"] == "6" and by["01"]["total"] == "6"
    assert all(by["01"][q] == "ok" for q in questions)
    assert by["02"]["status"] == "ok" and by["02"]["score"] == "0"
    assert by["02"]["E"] == "wrong: too_few_digits" and by["02"]["dE/dw8"] == "wrong: sign"
    assert by["02"]["out_o2"] == "missing" and "4 questions not answered" in by["02"]["reason"]
    assert by["03"]["status"] == "unreadable" and by["03"]["score"] == "0" and by["03"]["reason"]
    assert "not a claims file" not in by["03"]["reason"]  # no file contents echoed
    # student 3 has no file here: the class has 3 students, and a missing one is a row, not an error
    shutil.move(submissions / "student-03.txt", tmp_path / "away.txt")
    result = run("grade", class_set, submissions, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    third = data["students"][2]
    assert third["status"] == "missing" and third["score"] == 0 and "student-03.txt" in third["reason"]
    assert data["ignored"] == ["README"]


def test_a_line_answering_no_question_never_costs_the_answers_their_marks(class_set, tmp_path):
    # student 1's answers worked in mpmath from their variant's inputs and targets (weights as Mazur's)
    variant = tomllib.loads((class_set / "student-01.toml").read_text())
    layers = variant["layers"]
    assert layers[1]["weights"] == [[0.15, 0.2], [0.25, 0.3]] and layers[2]["weights"] == [[0.4, 0.45], [0.5, 0.55]]
    net = MazurExact(i=[repr(x) for x in layers[0]["values"]], t=[repr(x) for x in layers[2]["targets"]])
    values = {
        "out_o2": net.out_o[1],
        "E": net.E,
        "dE/dw8": net.gradients()[7],
        "delta_h2": net.delta_h[1],
        "dE/dw1": net.gradients()[0],
        "w1'": net.step().w[0],
    }
    lines = [f"{name} = {digits(v, 8)}" for name, v in values.items()]
    # a claim check cannot judge (after more updates than the replay budget allows) and a wrong one, no questions
    lines += ["E@401 = 0.12345678901234567890", "out_h1 = 0.5"]
    (tmp_path / "student-01.txt").write_text("\n".join(lines) + "\n")
    result = run("grade", class_set, tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["students"][0]
    assert first["status"] == "ok" and first["score"] == 6, first
    assert first["reason"] == "2 lines answering no question (not graded)"
    assert set(first["answers"].values()) == {"ok"}
    # a name the spec does not have: unreadable, the reason says so without quoting the file
    (tmp_path / "student-01.txt").write_text("\n".join([*lines[:6], "out_q9 = 0.5"]) + "\n")
    first = json.loads(run("grade", class_set, tmp_path, "--format", "json").stdout)["students"][0]
    assert first["status"] == "unreadable" and first["score"] == 0
    assert first["reason"].endswith("student-01.txt:7: unknown name"), first["reason"]


def test_the_gradebook_from_python_is_the_commands(class_set, tmp_path):
    import derive

    (tmp_path / "student-02.txt").write_text("".join(f"{n} = {v}\n" for n, v in answers_of(class_set, "02").items()))
    book = derive.gradebook(class_set, tmp_path)
    assert [(r.student, r.status, r.score) for r in book.rows] == [
        ("01", "missing", 0),
        ("02", "ok", 6),
        ("03", "missing", 0),
    ]
    assert run("grade", class_set, tmp_path).stdout.splitlines()[2].startswith("02,ok,6,6,")


def test_the_gradebook_refuses_bad_arguments_with_status_2(class_set, tmp_path):
    for args in ([tmp_path / "nope", tmp_path], [tmp_path, tmp_path], [class_set, tmp_path / "nope"]):
        result = run("grade", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output.startswith("error:")


# --------------------------------------------------------------------------
# Moodle


def test_moodle_xml_parses_with_a_category_per_student_and_the_answers_files_values(tmp_path):
    folder = tmp_path / "moodle"
    result = run("exercises", "mazur", "--students", 2, "--seed", 9, "-o", folder, "--format", "moodle")
    assert result.exit_code == 0, result.output
    root = ET.parse(folder / "moodle-questions.xml").getroot()
    assert root.tag == "quiz"
    categories = [q for q in root if q.get("type") == "category"]
    assert [c.find("category/text").text for c in categories] == [
        "$course$/mazur exercises/student-01",
        "$course$/mazur exercises/student-02",
    ]
    numerical = [q for q in root if q.get("type") == "numerical"]
    assert len(numerical) == 2 * 6
    for question in numerical:
        # Moodle's documented elements of a numerical question
        for tag in (
            "name/text",
            "questiontext/text",
            "generalfeedback/text",
            "defaultgrade",
            "answer/text",
            "answer/tolerance",
        ):
            assert question.find(tag) is not None, tag
        assert question.find("questiontext").get("format") == "html"
        assert question.find("answer").get("fraction") == "100"
        text = question.find("questiontext/text").text
        assert r"\(" in text and "<math" not in text  # TeX for MathJax; Moodle strips MathML
        feedback = question.find("generalfeedback/text").text
        assert r"\(" in feedback or r"\[" in feedback
    for label in ("01", "02"):
        answers = answers_of(folder, label)
        mine = [q for q in numerical if q.find("name/text").text.startswith(f"student-{label} ")]
        for question, (name, value) in zip(mine, answers.items()):
            assert question.find("name/text").text.endswith(f": {name}")
            assert question.find("answer/text").text == value
            # half a unit in the sixth significant digit
            v = Decimal(value)
            assert Decimal(question.find("answer/tolerance").text) == Decimal(5).scaleb(v.adjusted() - 6)
    variant = (folder / "student-01.toml").read_text()
    assert "0.55" in variant or "values" in variant  # the student's own numbers are in the question text too
    first = numerical[0].find("questiontext/text").text
    assert "Given numbers" in first


def test_moodle_accepts_the_oracles_value_correctly_rounded_and_refuses_one_unit_off(tmp_path):
    folder = tmp_path / "moodle"
    assert run("exercises", "mazur", "--students", 2, "--seed", 9, "-o", folder, "--format", "moodle").exit_code == 0
    root = ET.parse(folder / "moodle-questions.xml").getroot()
    for label in ("01", "02"):
        layers = tomllib.loads((folder / f"student-{label}.toml").read_text())["layers"]
        net = MazurExact(i=[repr(x) for x in layers[0]["values"]], t=[repr(x) for x in layers[2]["targets"]])
        oracle = {
            "out_o2": net.out_o[1],
            "E": net.E,
            "dE/dw8": net.gradients()[7],
            "delta_h2": net.delta_h[1],
            "dE/dw1": net.gradients()[0],
            "w1'": net.step().w[0],
        }
        for name, value in oracle.items():
            (question,) = [
                q
                for q in root
                if q.find("name/text") is not None and q.find("idnumber").text == f"student-{label}-{name}"
            ]
            key = Decimal(question.find("answer/text").text)
            tolerance = Decimal(question.find("answer/tolerance").text)
            right = Decimal(digits(value, 6))  # six significant digits, correctly rounded
            assert abs(right - key) <= tolerance, (label, name)
            for wrong in (off_in_last_digit(str(right), 1), off_in_last_digit(str(right), -1)):
                assert abs(Decimal(wrong) - key) > tolerance, (label, name, wrong)


SVG = "{http://www.w3.org/2000/svg}"


def test_moodle_questions_carry_the_network_drawing_as_an_svg_file(tmp_path):
    folder = tmp_path / "moodle"
    result = run("exercises", "mazur", "--students", 1, "--seed", 9, "-o", folder, "--format", "moodle")
    assert result.exit_code == 0, result.output
    root = ET.parse(folder / "moodle-questions.xml").getroot()
    numerical = [q for q in root if q.get("type") == "numerical"]
    assert numerical
    for question in numerical:
        holder = question.find("questiontext")
        # Moodle's format: <file name=… path="/" encoding="base64"> beside <text>, inside <questiontext>
        files = holder.findall("file")
        assert [(f.get("name"), f.get("path"), f.get("encoding")) for f in files] == [("network.svg", "/", "base64")]
        svg = ET.fromstring(base64.b64decode(files[0].text, validate=True))
        assert svg.tag == f"{SVG}svg"
        # an <img> shows no foreignObject (MathML): every label is plain SVG text, Mazur's six neurons
        assert svg.find(f".//{SVG}foreignObject") is None
        assert sorted(t.text for t in svg.iter(f"{SVG}text")) == ["h1", "h2", "i1", "i2", "o1", "o2"]
        assert len(svg.findall(f".//{SVG}circle")) == 6
        assert len(svg.findall(f".//{SVG}line")) == 8  # 2·2 + 2·2 weights, no bias drawn in the sketch
        # the question's HTML shows it by Moodle's file URL, with a text alternative
        text = question.find("questiontext/text").text
        images = re.findall(r"<img [^>]*>", text)
        assert len(images) == 1
        attributes = dict(re.findall(r'(\w+)="([^"]*)"', images[0]))
        assert attributes["src"] == "@@PLUGINFILE@@/network.svg"
        assert "h1" in attributes["alt"]
        # the worked answer shows no drawing: no file to carry
        assert question.find("generalfeedback/file") is None


def test_every_block_of_a_lecture_has_a_moodle_form():
    """Not only a sheet's blocks: a full lecture (diagrams with MathML labels, BP1–BP4, matrix forms, the
    loss curve) renders, each drawing an SVG file with text labels."""
    from derive.app.api import Model
    from derive.grading.moodle import MoodleRenderer
    from derive.lecture import Options, build_plan

    plan = build_plan(Model.load("mazur"), Options(exercises=True))
    renderer = MoodleRenderer(plan)
    kinds = set()
    html = []
    for section in plan.walk():
        for block in section.blocks:
            kinds.add(type(block).__name__)
            html.append(renderer.block(block))
    assert {"Diagram", "Plot", "Standard", "MatrixForm", "Table", "Equations", "Paragraph"} <= kinds
    assert "<math" not in "".join(html)
    assert set(renderer.files) == {"network.svg", "network-2.svg", "network-3.svg", "loss.svg"}
    for name, data in renderer.files.items():
        svg = ET.fromstring(data)
        assert svg.tag == f"{SVG}svg" and svg.find(f".//{SVG}foreignObject") is None, name
        assert f'src="@@PLUGINFILE@@/{name}"' in "".join(html)
    labels = {t.text for t in ET.fromstring(renderer.files["network.svg"]).iter(f"{SVG}text")}
    # the full drawing's edge and bias labels with Mazur's values, as plain text
    assert {"w1 = 0.15", "w8 = 0.55", "b1 = 0.35", "b2 = 0.6", "i1", "out_o2"} <= labels
