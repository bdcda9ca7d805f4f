"""The reviewer's second pass over the lectures, continued: page fill, narrow rows, operator spacing, the sources'
Chinese copies, why w1 agrees, one order for δ, and the count of agreeing digits.

Each test reads what a student reads (the PDF's text, the laid-out web page, the plan) and takes its numbers from
an independent computation here.
"""

import math
import re
from pathlib import Path

import pytest
from test_lecture import text_of
from test_lecture_review import measure
from test_lecture_review3 import build, flat, page_words, text_depths

# -- 1. the tanh example's pages fill ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en"])
def test_the_tanh_lecture_has_no_page_a_third_blank(tmp_path, lang):
    """The heading "Training" and its loss plot used to wait for a new page with a third of the page before left."""
    from conftest import need_tex

    need_tex(lang)
    pdf = build(tmp_path, "nielsen_tanh", "pdf", "--lang", lang)
    depths = text_depths(pdf)
    assert all(d >= 0.75 for d in depths[:-1]), [round(d, 2) for d in depths]
    pages = [flat(p) for p in text_of(pdf).split("\f")]
    # the heading, its sentence and the plot share a page (the plot's tick label "step" under it)
    training = next(p for p in pages if "Training Repeating the update" in p)
    assert "loss E" in training and "step" in training.split("Repeating the update")[1]


# -- 2 and 3. rows on a phone; the space around an operator ----------------------------------------------------------

PROBE = """<script>
const rows = [];
for (const lhs of document.querySelectorAll('.eqs .lhs')) {
  const rhs = lhs.nextElementSibling, first = rhs && rhs.querySelector('.piece');
  if (!lhs.textContent.trim() || !first) continue;
  const a = lhs.getBoundingClientRect(), b = first.getBoundingClientRect();
  rows.push({lhs: lhs.textContent.trim(), top: a.top, bottom: a.bottom, first_top: b.top, first_bottom: b.bottom});
}
// a piece that starts with a binary operator: the space before the operator and the space after it
const ops = [];
for (const piece of document.querySelectorAll('.eqs .piece')) {
  const prev = piece.previousElementSibling;
  const mo = piece.querySelector('math > mrow > mo:first-child');
  if (!prev || !mo || !mo.nextElementSibling) continue;
  const p = prev.getBoundingClientRect(), m = mo.getBoundingClientRect(), n = mo.nextElementSibling.getBoundingClientRect();
  if (Math.abs(p.top - m.top) > 20 || Math.abs(m.top - n.top) > 20) continue;  // wrapped: no space to compare
  // the mo's box is its glyph: its lspace and rspace lie outside it, in what is measured
  ops.push({op: mo.textContent, before: m.left - p.right, after: n.left - m.right});
}
document.body.setAttribute('data-metrics', JSON.stringify({rows, ops}));
</script>"""


def laid_out(page: Path, tmp_path: Path, width: int) -> dict:
    return measure(page, tmp_path, width, PROBE)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_left_side_sits_on_the_first_line_of_its_wrapped_row(tmp_path, lang):
    """δ²₁ = a(1 − a)·(w δ + … + w δ) wraps on a phone: δ²₁ stays beside its first line, not beside the second."""
    page = build(tmp_path, "digits", "html", "--lang", lang)
    rows = laid_out(page, tmp_path, 390)["rows"]
    wrapped = [r for r in rows if r["first_bottom"] < r["bottom"] - 20 or r["top"] > r["first_bottom"]]
    assert len(rows) > 20
    # its box overlaps the first piece's line, and starts no lower than that line
    assert all(r["top"] <= r["first_bottom"] and r["bottom"] >= r["first_top"] for r in rows), wrapped
    assert all(r["top"] <= r["first_top"] + 8 for r in rows if "∂" not in r["lhs"]), wrapped


@pytest.mark.parametrize("spec", ["mazur", "digits"])
def test_a_binary_operator_has_the_same_space_on_both_sides(tmp_path, spec):
    """(0.01 − 0.75136507): the − is as far from 0.01 as from 0.75136507, as in the PDF."""
    page = build(tmp_path, spec, "html")
    ops = laid_out(page, tmp_path, 1000)["ops"]
    minus = [o for o in ops if o["op"] == "\u2212"]
    assert len(ops) > 30 and minus
    uneven = [o for o in ops if abs(o["before"] - o["after"]) > 1.5]
    assert not uneven, uneven[:5]


# -- 7. the digits a finite-difference check shares with the chain rule -----------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        (0.91235, 0.91244, 3),  # 9,1,2 then 3 against 4; the relative difference 9.9e-5 would say 4
        (0.1234561, 0.1234569, 6),  # 1,2,3,4,5,6 then 1 against 9
        (0.49875208038910324, 0.49875208038578395, 11),  # the eo example's own pair: 4987520803 8, then 9 against 5
        (0.019380572, 0.019380572, 17),
        (-0.5, 0.5, 0),
        (2.5, 0.25, 0),  # the same digits at another place share nothing
    ],
)
def test_agreeing_digits_are_the_leading_digits_both_numbers_share(a, b, shared):
    from derive.lecture.build import _agreeing_digits

    assert _agreeing_digits(a, b) == shared


def test_across_a_carry_the_count_stays_within_the_difference():
    from derive.lecture.build import _agreeing_digits

    # 0.19999999999 and 0.20000000001 share no leading digit but differ by 2e-11: 8 or 9 digits, not 0 and not 10
    assert _agreeing_digits(0.19999999999, 0.20000000001) in (8, 9)


# -- 5. why Mazur's w1 agrees while his E′ does not ---------------------------------------------------------------------


def mazur_step(stale: bool) -> tuple[float, float]:
    """One update of Mazur's network by hand: w1 and E after it; ``stale`` takes the hidden δs from the new w5–w8."""
    s = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    x, t = (0.05, 0.10), (0.01, 0.99)
    w_in, w_out = ((0.15, 0.20), (0.25, 0.30)), ((0.40, 0.45), (0.50, 0.55))
    h = [s(w[0] * x[0] + w[1] * x[1] + 0.35) for w in w_in]
    o = [s(w[0] * h[0] + w[1] * h[1] + 0.6) for w in w_out]
    d_out = [(o[k] - t[k]) * o[k] * (1 - o[k]) for k in range(2)]
    new_out = [[w_out[k][j] - 0.5 * d_out[k] * h[j] for j in range(2)] for k in range(2)]
    above = new_out if stale else w_out
    d_h = [sum(above[k][j] * d_out[k] for k in range(2)) * h[j] * (1 - h[j]) for j in range(2)]
    new_in = [[w_in[j][i] - 0.5 * d_h[j] * x[i] for i in range(2)] for j in range(2)]
    h = [s(w[0] * x[0] + w[1] * x[1] + 0.35) for w in new_in]
    o = [s(w[0] * h[0] + w[1] * h[1] + 0.6) for w in new_out]
    return new_in[0][0], 0.5 * sum((t[k] - o[k]) ** 2 for k in range(2))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lecture_says_why_mazur_s_w1_agrees_and_his_loss_does_not(tmp_path, lang):
    from conftest import need_tex

    need_tex(lang)
    w1, loss = mazur_step(stale=False)
    w1_stale, loss_stale = mazur_step(stale=True)
    # the claim checked first: Mazur's w1′ (0.149780716) is the rule's, his E′ (0.291027924) the stale weights'
    assert f"{w1:.9f}" == "0.149780716" != f"{w1_stale:.9f}"
    assert f"{loss_stale:.9f}" == "0.291027924" != f"{loss:.9f}"
    words = flat(text_of(build(tmp_path, "mazur", "pdf", "--lang", lang)))
    page = page_words(build(tmp_path, "mazur", "html", "--lang", lang))
    if lang == "en":
        why = "Why does w1 agree when E does not? The new w1 is computed as the update rule says, with the hidden δs"
        assert "from the old output weights, so it agrees" in words and "from the old output weights" in page
    else:
        why = "为什么 w1 一致而 E 不一致？"
        assert "用旧的输出层权重" in words.replace(" ", "") and "用旧的输出层权重" in page.replace(" ", "")
    # right after the sentence that says w1 agrees, and said once (not for w5, whose update no δ above can change)
    assert words.count(why) == 1 and words.index(why) > words.index("0.149780716")
    assert why.replace(" ", "") in page.replace(" ", "")


# -- 6. one order for a hidden δ: BP2's (Wᵀ δ) ⊙ f'(z) -------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["mazur", "digits", "nielsen_tanh"])
def test_every_hidden_delta_is_written_sum_first(tmp_path, spec):
    tex = build(tmp_path, spec, "tex", "--format", "tex").read_text()
    # a δ whose first side holds δs of the layer above: a hidden δ, written (w δ + … + w δ) then f'
    rows = [r for r in re.findall(r"^  (\\delta[^&]*)&= ([^\n]*)", tex, re.M) if r"\delta" in r[1].split("=")[0]]
    hidden = [(lhs, rhs) for lhs, rhs in rows if "frac" not in rhs.split("=")[0]]
    assert hidden
    assert all(rhs.startswith("(w") for _, rhs in hidden), hidden
    page = page_words(build(tmp_path, spec, "html", name="page"))
    if spec == "digits":  # on the web page too: the sum, then a(1 − a)
        assert (
            "δ 1 2 = ( w 1 , 1 3 δ 1 3 + w 2 , 1 3 δ 2 3 + … + w 10 , 1 3 δ 10 3) · a 1 2 ( 1 − a 1 2) = − 0.048"
            in page
        )
