"""`derive check`: claimed numbers against the oracles, the verdict rules, exit codes.

Every expected value comes from tests/oracles.py (NumPy backprop, finite
differences, a plain training loop); the claims are written from those values.
"""

import json
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from oracles import Net, backprop, forward, mazur, per_output_loss, train
from strategies import networks

from derive.app.api import Model
from derive.app.cli import main
from derive.check.claims import Claim, agreeing_digits, check, is_ok, parse_claim, read_claims, report_text
from derive.errors import DeriveError
from derive.spec.reading import parse_spec

ARTICLE = Path(__file__).parent.parent / "docs" / "mazur-article.txt"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def D(text):
    return Decimal(text)


def to_digits(value, k, rounding=ROUND_HALF_UP):
    """``value`` rounded (or truncated) to k significant digits, written as a claim would be.

    The float is read as its shortest repr: 0.3 is 0.3, not 0.2999999999999999888….
    """
    exact = Decimal(repr(float(value)))
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - k + 1), rounding=rounding)


def near_a_boundary(value, shown):
    """True when the float lies within 1e-11 (relative) of the next digit boundary above the truncation:
    there rounding noise decides between two claims, and is_ok takes the boundary."""
    v = abs(Decimal(float(value)))
    unit = Decimal(1).scaleb(shown.as_tuple().exponent)
    return abs(abs(shown) + unit - v) <= v * Decimal("1e-11")


def sigmoid_slope(s):
    return s * (1 - s)


# --------------------------------------------------------------------------
# the oracle's numbers for Mazur's network, by claim name


@pytest.fixture(scope="module")
def oracle():
    net = mazur()
    e, grad, inner = backprop(net)
    z, a, d = inner["z"], inner["a"], inner["delta"]
    (W1, W2), x, t = net.weights, net.x, net.t
    errors = per_output_loss(a[2], t, "half_sse")
    once, first = train(net, 1)
    trained, history = train(net, 10_000)
    final = forward(trained)[1][-1]
    values = {
        "i1": x[0],
        "i2": x[1],
        "b1": 0.35,
        "b2": 0.60,
        "target_o1": t[0],
        "target_o2": t[1],
        "net_h1": z[1][0],
        "net_h2": z[1][1],
        "out_h1": a[1][0],
        "out_h2": a[1][1],
        "net_o1": z[2][0],
        "net_o2": z[2][1],
        "out_o1": a[2][0],
        "out_o2": a[2][1],
        "E_o1": errors[0],
        "E_o2": errors[1],
        "E": e,
        "E_total": e,
        "delta_h1": d[1][0],
        "delta_h2": d[1][1],
        "delta_o1": d[2][0],
        "delta_o2": d[2][1],
        "dE/dout_o1": a[2][0] - t[0],  # E = ½Σ(t − o)²
        "dE/dnet_o1": d[2][0],
        "dE/dout_h1": (W2.T @ d[2])[0],
        "dE/dnet_h2": d[1][1],
        "dE/di1": (W1.T @ d[1])[0],
        "dE/db1": grad[4],
        "dE/db2": grad[9],
        "dout_o1/dnet_o1": sigmoid_slope(a[2][0]),
        "dout_h1/dnet_h1": sigmoid_slope(a[1][0]),
        "dnet_o1/dw5": a[1][0],
        "dnet_h1/dw1": x[0],
        "dnet_o1/dout_h1": W2[0, 0],
        "dnet_o1/db2": 1.0,
        "dE_o1/dout_o1": a[2][0] - t[0],
        "dE_o2/dout_o1": 0.0,
        "dE_o1/dnet_o1": d[2][0],
        "dE_o1/dout_h1": d[2][0] * W2[0, 0],
        "dE_o2/dout_h1": d[2][1] * W2[1, 0],
        "dE_o2/dw1": d[2][1] * W2[1, 0] * sigmoid_slope(a[1][0]) * x[0],
        "E'": first[1],
        "E@1": first[1],
        "E@9999": history[9999],
        "E@10000": history[10_000],
        "out_o1@10000": final[0],
        "out_o2@10000": final[1],
        "b1'": 0.35,  # Mazur does not update the biases
    }
    names = [["w1", "w2"], ["w3", "w4"]], [["w5", "w6"], ["w7", "w8"]]
    for layer, rows in enumerate(names):
        for j, row in enumerate(rows):
            for k, name in enumerate(row):
                values[name] = net.weights[layer][j, k]
                values[f"dE/d{name}"] = np.outer(d[layer + 1], a[layer])[j, k]
                values[f"{name}'"] = once.weights[layer][j, k]
                values[f"{name}@1"] = once.weights[layer][j, k]
    return {k: float(v) for k, v in values.items()}


@pytest.fixture(scope="module")
def model():
    return Model.load("mazur")


def claim(name, number, line=None):
    return parse_claim(f"{name} = {number}", "test", line)


# --------------------------------------------------------------------------
# the verdict: rounded or truncated to the digits shown


def test_a_rounded_claim_is_ok():
    assert is_ok(D("0.75136507"), 0.7513650695523157)
    assert is_ok(D("0.7513651"), 0.7513650695523157)


def test_a_truncated_claim_is_ok_and_so_is_the_rounded_one_next_to_it():
    v = 0.593269992107187
    assert is_ok(D("0.59326999"), v)  # truncated
    assert is_ok(D("0.5932700"), v)  # rounded up
    assert not is_ok(D("0.59326998"), v)  # one unit below the truncation
    assert not is_ok(D("0.5932701"), v)  # one unit above the rounding


def test_one_unit_off_in_the_last_digit_is_wrong_when_it_is_neither_rounding_nor_truncation():
    v = -0.019049118258278114
    assert is_ok(D("-0.019049118"), v)
    assert not is_ok(D("-0.019049119"), v)  # Mazur's: 0.7 units away, but on the wrong side
    assert is_ok(D("-0.01904912"), v)


def test_negative_numbers_truncate_towards_zero():
    v = -0.0228
    assert is_ok(D("-0.02"), v)  # truncated
    assert is_ok(D("-0.023"), v)  # rounded
    assert not is_ok(D("-0.03"), v)
    assert not is_ok(D("0.0228"), v)


def test_scientific_notation_counts_the_digits_of_the_mantissa():
    v = 3.510854812251261e-05
    assert is_ok(D("3.51085e-5"), v)
    assert is_ok(D("3.510855E-5"), v)
    assert is_ok(D("0.0000351085"), v)
    assert not is_ok(D("3.51019e-5"), v)  # the error after 10,000 updates is another number
    assert agreeing_digits(D("3.51019e-5"), v) == 4  # 3.510, truncated


def test_trailing_zeros_are_digits_the_claim_shows():
    assert is_ok(D("0.5"), 0.5113)
    assert not is_ok(D("0.500"), 0.5113)
    assert is_ok(D("0.511301270"), 0.51130127024)
    assert is_ok(D("0.51130127"), 0.5113012719)
    assert not is_ok(D("0.511301270"), 0.5113012719)  # the ninth digit is 1


def test_zero_and_exact_values():
    assert is_ok(D("0"), 0.0)
    assert is_ok(D("0.000"), -0.0004)
    assert not is_ok(D("0.000"), 0.0012)
    assert is_ok(D("0.3775"), 0.15 * 0.05 + 0.20 * 0.10 + 0.35)  # 0.37749999999999995 in binary


def test_agreeing_digits_counts_the_right_leading_digits():
    assert agreeing_digits(D("0.75136079"), 0.7513650695523157) == 5
    assert agreeing_digits(D("0.75136507"), 0.7513650695523157) == 8
    assert agreeing_digits(D("0.2999"), 0.3) == 3  # 0.300 when rounded to three digits
    assert not is_ok(D("0.3774"), 0.15 * 0.05 + 0.20 * 0.10 + 0.35)  # 0.3775 exactly, though the float is below
    assert agreeing_digits(D("0.9"), 0.1) == 0


@SETTINGS
@given(
    st.floats(min_value=1e-8, max_value=1e8) | st.floats(min_value=-1e8, max_value=-1e-8),
    st.integers(1, 12),
    st.sampled_from([ROUND_HALF_UP, ROUND_DOWN]),
    st.integers(2, 50),
    st.sampled_from([1, -1]),
)
def test_rounded_or_truncated_is_ok_and_two_units_off_is_wrong(v, k, rounding, units, sign):
    shown = to_digits(v, k, rounding)
    assume(not near_a_boundary(v, shown))
    assert is_ok(shown, v)
    assert agreeing_digits(shown, v) == len(shown.as_tuple().digits)
    off = shown + sign * units * Decimal(1).scaleb(shown.as_tuple().exponent)
    assert not is_ok(off, v)


# --------------------------------------------------------------------------
# every kind of name, against the oracle


KINDS = [
    ("i1", "an input"),
    ("w5", "a weight"),
    ("b2", "a bias"),
    ("target_o2", "a target"),
    ("net_h1", "a net"),
    ("out_o2", "an out"),
    ("E", "the loss"),
    ("E_total", "the loss, in Mazur's name"),
    ("E_o1", "output o1's error"),
    ("E_o2", "output o2's error"),
    ("delta_h1", "a hidden δ"),
    ("delta_o2", "an output δ"),
    ("dE/dw1", "a gradient through two paths"),
    ("dE/dw7", "an output weight's gradient"),
    ("dE/db1", "a shared bias's gradient"),
    ("dE/dnet_o1", "∂E/∂net is δ"),
    ("dE/dout_h1", "∂E/∂out of a hidden neuron"),
    ("dE/dout_o1", "∂E/∂out of an output"),
    ("dE/di1", "∂E/∂input"),
    ("dE_o1/dout_h1", "one output's error through its own path"),
    ("dE_o2/dout_h1", "the other output's"),
    ("dE_o2/dw1", "one output's error down to a first-layer weight"),
    ("dE_o2/dout_o1", "another output's out does not enter E_o2"),
    ("dE_o1/dnet_o1", "one output's δ"),
    ("dout_o1/dnet_o1", "the activation's slope"),
    ("dnet_o1/dw5", "a net by its weight"),
    ("dnet_o1/dout_h1", "a net by the out feeding it"),
    ("dnet_o1/db2", "a net by its bias"),
    ("w5'", "a weight after one update"),
    ("w1@1", "a first-layer weight after one update"),
    ("b1'", "a bias the spec does not update"),
    ("E'", "the loss after one update"),
    ("E@9999", "the loss after 9,999 updates"),
    ("out_o1@10000", "an output after 10,000 updates"),
]


@pytest.mark.parametrize("name", [k for k, _ in KINDS], ids=[d for _, d in KINDS])
def test_every_kind_of_name_is_checked_against_the_oracle(model, oracle, name):
    v = oracle[name]
    claims = [claim(name, to_digits(v, 9)), claim(name, to_digits(v, 6, ROUND_DOWN))]
    if v != 0:
        claims.append(claim(name, to_digits(v, 7) + 3 * Decimal(1).scaleb(to_digits(v, 7).as_tuple().exponent)))
    report = check(model, claims)
    assert [r.ok for r in report.results] == [True, True, False][: len(claims)]
    assert abs(report.results[0].computed - v) <= 1e-11 * max(abs(v), 1e-3)


def test_per_output_partials_agree_with_finite_differences_of_that_outputs_error(model):
    net = mazur()
    _, a = forward(net)
    W2, b2 = net.weights[1], net.biases[1]

    def error_of(k, out_h1):
        hidden = np.array([out_h1, a[1][1]])
        o = 1 / (1 + np.exp(-(W2 @ hidden + b2)))
        return per_output_loss(o, net.t, "half_sse")[k]

    h = 1e-6
    for k, name in enumerate(["dE_o1/dout_h1", "dE_o2/dout_h1"]):
        fd = (error_of(k, a[1][0] + h) - error_of(k, a[1][0] - h)) / (2 * h)
        (result,) = check(model, [claim(name, to_digits(fd, 6))]).results
        assert result.ok, (name, fd, result.computed)
        assert abs(result.computed - fd) < 1e-9


def _spec_of(net):
    return Model(parse_spec(net.toml()))


def _weight_fd(net, k, layer, j, i, h=1e-6):
    """∂E_k/∂W[layer][j, i] by central differences of output k's own loss term."""

    def error(delta):
        weights = [w.copy() for w in net.weights]
        weights[layer][j, i] += delta
        moved = Net(**{**net.__dict__, "weights": weights})
        o = forward(moved)[1][-1]
        return per_output_loss(o, net.t, net.loss)[k]

    return (error(h) - error(-h)) / (2 * h)


@SETTINGS
@given(networks(max_hidden=2, max_width=3, losses=("half_sse", "mse", "cross_entropy", "bce")), st.data())
def test_one_outputs_error_differentiated_by_any_weight_matches_finite_differences(net, data):
    model = _spec_of(net)
    layer = data.draw(st.integers(0, len(net.weights) - 1))
    j = data.draw(st.integers(0, net.weights[layer].shape[0] - 1))
    i = data.draw(st.integers(0, net.weights[layer].shape[1] - 1))
    k = data.draw(st.integers(0, net.sizes[-1] - 1))
    fd = _weight_fd(net, k, layer, j, i)
    name = f"dE_{len(net.sizes)}_{k + 1}/dw{layer + 2}_{j + 1}_{i + 1}"
    (result,) = check(model, [claim(name, "0")]).results
    assert abs(result.computed - fd) <= 1e-6 * abs(fd) + 1e-8


@SETTINGS
@given(networks(max_hidden=2, max_width=3), st.data())
def test_claims_written_from_the_oracle_are_ok_and_two_units_off_are_wrong(net, data):
    e, grad, _ = backprop(net)
    names = net.parameter_names()
    index = data.draw(st.integers(0, len(names) - 1))
    g = grad[index]
    assume(abs(g) > 1e-6 * max(np.abs(grad).max(), 1e-9))  # a gradient that cancels to noise has no digits to check
    k = data.draw(st.integers(1, 8))
    rounding = data.draw(st.sampled_from([ROUND_HALF_UP, ROUND_DOWN]))
    units = data.draw(st.integers(2, 30)) * data.draw(st.sampled_from([1, -1]))
    shown = to_digits(g, k, rounding)
    loss = to_digits(e, k, rounding)
    assume(not near_a_boundary(g, shown) and not near_a_boundary(e, loss))
    off = shown + units * Decimal(1).scaleb(shown.as_tuple().exponent)
    report = check(
        _spec_of(net), [claim(f"dE/d{names[index]}", shown), claim(f"dE/d{names[index]}", off), claim("E", loss)]
    )
    assert [r.ok for r in report.results] == [True, False, True]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mazur_claims_rounded_or_truncated_from_the_oracle_are_always_ok(model, oracle, data):
    name = data.draw(st.sampled_from(sorted(k for k in oracle if "@10000" not in k and "9999" not in k)))
    v = oracle[name]
    k = data.draw(st.integers(1, 10))
    rounding = data.draw(st.sampled_from([ROUND_HALF_UP, ROUND_DOWN]))
    shown = to_digits(v, k, rounding) if v != 0 else Decimal("0")
    assume(v == 0 or not near_a_boundary(v, shown))  # net_h2 is 0.3925 exactly; its float 0.39249999999999996
    checked = [claim(name, shown)]
    if v != 0:
        units = data.draw(st.integers(2, 30)) * data.draw(st.sampled_from([1, -1]))
        checked.append(claim(name, shown + units * Decimal(1).scaleb(shown.as_tuple().exponent)))
    assert [r.ok for r in check(model, checked).results] == [True, False][: len(checked)]


# --------------------------------------------------------------------------
# Mazur's article


MAZUR_WRONG = {"out_o1", "dE_o2/dout_h1", "E'", "E@10000", "out_o1@10000", "out_o2@10000"}


def test_the_article_file_flags_exactly_the_numbers_the_oracle_contradicts(model, oracle):
    claims = read_claims(ARTICLE.read_text(encoding="utf-8"), str(ARTICLE))
    by_oracle = set()
    for c in claims:
        v = oracle[c.name]
        exponent = c.value.as_tuple().exponent
        quantum = Decimal(1).scaleb(exponent)
        written = {Decimal(v).quantize(quantum, ROUND_HALF_UP), Decimal(v).quantize(quantum, ROUND_DOWN)}
        if c.value not in written:
            by_oracle.add(c.name)
    report = check(model, claims)
    flagged = {r.claim.name for r in report.results if not r.ok}
    assert by_oracle == MAZUR_WRONG  # the list of the article's wrong numbers
    assert flagged == MAZUR_WRONG
    assert report.wrong == len(MAZUR_WRONG)
    assert len(claims) >= 45


def test_the_article_file_names_every_number_the_article_prints():
    names = {c.name for c in read_claims(ARTICLE.read_text(encoding="utf-8"), str(ARTICLE))}
    printed = {"net_h1", "out_h1", "out_h2", "net_o1", "out_o1", "out_o2", "E_o1", "E_o2", "E_total"}
    printed |= {"dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5", "dE/dw5", "dE_o1/dout_h1", "dE_o2/dout_h1"}
    printed |= {"dE/dout_h1", "dout_h1/dnet_h1", "dnet_h1/dw1", "dE/dw1", "E'", "E@10000"}
    printed |= {f"w{i}'" for i in range(1, 9)} | {"out_o1@10000", "out_o2@10000"}
    assert printed <= names
    text = ARTICLE.read_text(encoding="utf-8")
    assert "w3·i2" in text and "w2·i2" in text  # the copy's wrong formula for net_h1 is explained


def test_the_articles_typo_goes_wrong_at_its_own_step(model):
    report = check(model, read_claims(ARTICLE.read_text(encoding="utf-8"), str(ARTICLE)))
    typo = next(r for r in report.results if r.claim.name == "out_o1")
    assert typo.note is not None and typo.note.cause == "here"
    assert [c.name for c in typo.note.inputs] == ["net_o1"]
    first_update = next(r for r in report.results if r.claim.name == "E'")
    assert first_update.note is not None and first_update.note.cause == "here"  # not what the printed w' give


# --------------------------------------------------------------------------
# explanations from neighbouring claims


def test_a_loss_computed_from_a_wrong_output_is_traced_to_that_output(model, oracle):
    wrong_out = 0.75136079
    e_from_it = 0.5 * (0.01 - wrong_out) ** 2 + 0.5 * (0.99 - oracle["out_o2"]) ** 2  # the article's formula
    report = check(model, [claim("out_o1", wrong_out, 1), claim("E", to_digits(e_from_it, 9), 2)])
    out, loss = report.results
    assert not out.ok and not loss.ok
    assert loss.note is not None and loss.note.cause == "upstream"
    assert [c.name for c in loss.note.wrong] == ["out_o1"]
    assert "follows from the wrong out_o1 = 0.75136079 (line 1)" in report_text(report)


def test_a_step_that_does_not_follow_from_right_inputs_is_where_it_goes_wrong(model, oracle):
    report = check(model, [claim("net_o1", to_digits(oracle["net_o1"], 9)), claim("out_o1", "0.75136079")])
    note = report.results[1].note
    assert note is not None and note.cause == "here"
    assert abs(note.recomputed - oracle["out_o1"]) < 1e-8


def test_an_update_from_a_rounded_gradient_is_rounding_carried_forward(model, oracle):
    g = to_digits(oracle["dE/dw5"], 3)  # 0.0822, right to its three digits
    w5 = Decimal("0.40") - Decimal("0.5") * g  # 0.3589: what the update gives from it
    report = check(model, [claim("dE/dw5", g), claim("w5'", w5.quantize(Decimal("0.00001")))])
    grad, update = report.results
    assert grad.ok and not update.ok
    assert update.note is not None and update.note.cause == "rounding"


def test_an_update_from_a_wrong_gradient_is_traced_to_it(model, oracle):
    report = check(model, [claim("dE/dw5", "0.0922"), claim("w5'", "0.3539")])
    assert report.results[1].note is not None
    assert [c.name for c in report.results[1].note.wrong] == ["dE/dw5"]


# --------------------------------------------------------------------------
# claims files and names: bad input is a DeriveError with its line


def test_a_claims_file_skips_comments_and_blank_lines_and_keeps_line_numbers():
    claims = read_claims("# Mazur\n\nout_o1 = 0.75136507  # the original\n  E = 0.298371109\n", "c.txt")
    assert [(c.name, c.number, c.line, c.where) for c in claims] == [
        ("out_o1", "0.75136507", 3, "c.txt:3"),
        ("E", "0.298371109", 4, "c.txt:4"),
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("E = 0.29\nout_o1 0.75\n", "c.txt:2: expected NAME = VALUE"),
        ("E = 0.29\n\nout_o1 = 0.75.1\n", "c.txt:3: the value is not a number"),
        ("E = \n", "c.txt:1: expected NAME = VALUE"),
        ("= 0.3\n", "c.txt:1: expected NAME = VALUE"),
        ("E = nan\n", "c.txt:1: the value is not a number"),
        ("E = 1/2\n", "c.txt:1: the value is not a number"),
        ("# nothing\n\n", "c.txt: no claims in the file"),
    ],
)
def test_a_malformed_claims_file_names_the_line(text, problem):
    with pytest.raises(DeriveError) as err:
        read_claims(text, "c.txt")
    assert problem in str(err.value)


@pytest.mark.parametrize(
    "name, problem, hint",
    [
        ("out_o3", "unknown name 'out_o3'", "did you mean 'out_o2' or 'out_o1'"),
        ("dE/dw55", "unknown parameter 'w55'", "did you mean 'w5'"),
        ("E_o3", "unknown name 'E_o3'", "E_o1"),
        ("delta_h3", "unknown name 'delta_h3'", "delta_h1"),
        ("dout_o1/dw1", "not one factor of the chain rule", "dE/dX"),
        ("dnut_o1/dw5", "unknown quantity 'nut_o1'", "net_o1"),
        ("w5''", "unknown name", "X' or X@N"),
        ("E@20000000", "at most 100,000 updates (the step limit)", "not checked"),
    ],
)
def test_an_unknown_name_is_a_derive_error_with_a_suggestion(model, name, problem, hint):
    with pytest.raises(DeriveError) as err:
        check(model, [Claim(name, "0.1", Decimal("0.1"), "c.txt:7", 7)])
    assert problem in str(err.value)
    assert hint in str(err.value)
    assert err.value.where == "c.txt:7"


def test_names_may_be_written_with_partial_signs_and_spaces(model, oracle):
    report = check(model, [claim("∂E/∂w5", to_digits(oracle["dE/dw5"], 8)), claim("dE / dw5", "0.0821670")])
    assert all(r.ok for r in report.results)
    assert report.results[0].quantity.name == "dE/dw5"


# --------------------------------------------------------------------------
# the command: exit status 0, 1, 2


def run(*args):
    return CliRunner().invoke(main, ["check", *args])


def test_exit_status_is_0_when_every_claim_is_ok(oracle):
    result = run(
        "mazur", f"out_o1={to_digits(oracle['out_o1'], 8)}", f"dE/dw5={to_digits(oracle['dE/dw5'], 5, ROUND_DOWN)}"
    )
    assert result.exit_code == 0, result.output
    assert "2 claims, 2 ok, 0 wrong" in result.output


def test_exit_status_is_1_when_a_claim_is_wrong_and_the_text_shows_both_numbers(oracle):
    result = run("mazur", "out_o1=0.75136079")
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.split()[1:2] == ["out_o1"])
    computed = f"{oracle['out_o1']:.10g}"  # shown to the claim's 8 digits and 2 more
    assert "0.75136079" in line and computed in line and "5/8" in line and "WRONG" in line


def test_the_article_example_runs_from_the_command_line():
    result = run("mazur", "--claims", str(ARTICLE))
    assert result.exit_code == 1
    assert "50 claims" in result.output and "6 wrong" in result.output
    assert "goes wrong at this step: from net_o1 = 1.105905967 (line 36)" in result.output


def test_json_lists_every_claim_with_its_verdict(tmp_path, oracle):
    result = run("mazur", "E@9999=0.0000351085", "E@10000=0.0000351085", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["wrong"] == 1
    assert [c["verdict"] for c in data["claims"]] == ["ok", "wrong"]
    first = data["claims"][0]
    assert {"name", "claimed", "computed", "verdict", "digits"} <= set(first)
    assert first["claimed"] == 3.51085e-5
    assert abs(first["computed"] - oracle["E@9999"]) < 1e-15
    assert data["claims"][1]["digits"] == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["mazur", "out_o3=0.5"], "did you mean 'out_o2' or 'out_o1'"),
        (["mazur", "out_o1=zero"], "'zero' is not a number"),
        (["mazur", "out_o1"], "expected NAME = VALUE"),
        (["mazur"], "no claims to check"),
        (["mazur", "--claims", "/nonexistent/claims.txt"], "cannot read the claims file"),
        (["mazr", "E=0.3"], "did you mean 'mazur'"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_malformed_claims_file_exits_2_with_its_line_number(tmp_path):
    path = tmp_path / "claims.txt"
    path.write_text("E = 0.298371109\nw5' = 0,35891648\n", encoding="utf-8")
    result = run("mazur", "--claims", str(path))
    assert result.exit_code == 2
    assert f"{path}:2: the value is not a number" in result.output and "0,35891648" not in result.output


def test_a_spec_without_numbers_cannot_be_checked(tmp_path):
    spec = tmp_path / "bare.toml"
    spec.write_text(
        '[loss]\nkind = "half_sse"\n[[layers]]\nsize = 2\n[[layers]]\nsize = 1\nactivation = "sigmoid"\n',
        encoding="utf-8",
    )
    result = run(str(spec), "E=0.1")
    assert result.exit_code == 2
    assert "needs numbers the spec does not give" in result.output


def test_a_claims_file_saved_on_windows_reads_the_same(tmp_path, oracle):
    path = tmp_path / "claims.txt"
    path.write_bytes("\ufeffout_o1 = 0.75136507\r\nE = 0.298371109\r\n".encode())
    result = run("mazur", "--claims", str(path))
    assert result.exit_code == 0, result.output
    assert "2 claims" in result.output


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=1e-4, max_value=0.1), st.sampled_from([1, -1]))
def test_any_loss_worked_from_a_wrong_output_is_traced_to_it(model, oracle, size, sign):
    wrong_out = to_digits(oracle["out_o1"] + sign * size, 8)
    e_from_it = 0.5 * (0.01 - float(wrong_out)) ** 2 + 0.5 * (0.99 - oracle["out_o2"]) ** 2
    report = check(model, [claim("out_o1", wrong_out, 1), claim("E", to_digits(e_from_it, 9), 2)])
    out, loss = report.results
    assert not out.ok
    if not loss.ok:  # a tiny slip in out_o1 can leave E right to nine digits
        assert loss.note is not None and loss.note.cause == "upstream"


def test_the_readme_shows_real_output():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ derive check mazur --claims docs/mazur-article.txt\n", 1)[1].split("```", 1)[0]
    actual = run("mazur", "--claims", str(ARTICLE)).output.replace(str(ARTICLE), "docs/mazur-article.txt")
    for line in block.splitlines():
        if line.strip() and line.strip() != "…":
            assert line in actual.splitlines(), line


@SETTINGS
@given(networks(max_hidden=1, max_width=3))
def test_each_outputs_error_is_its_term_of_the_loss_for_every_loss(net):
    _, acts = forward(net)
    terms = per_output_loss(acts[-1], net.t, net.loss if not net.custom_loss else "logcosh")
    names = [f"E_{len(net.sizes)}_{k + 1}" for k in range(len(terms))]
    report = check(_spec_of(net), [claim(n, "0") for n in names])
    for result, term in zip(report.results, terms):
        assert abs(result.computed - term) <= 1e-9 * max(1.0, abs(term))
