"""Issue 22, the teacher's second pass over the lectures: saturated numbers, specs without targets,
wide rows, honest wording.

Each test reads what a student reads (the PDF's text via pdftotext, the LaTeX or HTML source) and takes
its numbers from an independent computation here, never from derive's own output.
"""

import html
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import need_tex
from test_lecture import text_of

from derive.app.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def build(tmp_path: Path, spec, suffix: str, *args: str, name: str = "lecture") -> Path:
    out = tmp_path / f"{name}.{suffix}"
    result = CliRunner().invoke(main, ["lecture", str(spec), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def flat(text: str) -> str:
    """One line, without the space pdftotext leaves before a closing bracket after an exponent."""
    return re.sub(r" \)", ")", " ".join(text.split()))


def page_words(page: Path) -> str:
    """An HTML lecture's text, MathML tokens joined: what a reader sees, in one line."""
    text = re.sub(r"<[^>]+>", " ", page.read_text())
    return flat(html.unescape(text))


def g8(value: float) -> str:
    return f"{value:.8g}"


def sci(value: float) -> str:
    """7.1234567 × 10−33, as pdftotext reads a number in scientific notation."""
    mantissa, exponent = f"{value:.7e}".split("e")
    return f"{mantissa} × 10−{abs(int(exponent))}"


# -- 1. saturated networks --------------------------------------------------------------------------------

SATURATED = """
name = "tiny"
title = "Saturated"
[loss]
kind = "half_sse"
[[layers]]
names = ["x1"]
values = [30.0]
[[layers]]
names = ["h1"]
activation = "sigmoid"
weights = [[2.0]]
bias = 1.0
[[layers]]
names = ["o1"]
activation = "sigmoid"
weights = [[20.0]]
bias = 0.0
targets = [0.5]
[training]
learning_rate = 0.5
"""


def saturated_numbers() -> dict[str, float]:
    """The reviewer's saturated network by hand: σ(61) is 1 in floats, so its slope comes from e^−61."""
    tail = math.exp(-61.0)
    slope_h = tail / (1 + tail) ** 2  # σ'(61) = σ(1 − σ), without forming 1 − σ
    out_o = 1 / (1 + math.exp(-20.0))
    delta_o = (out_o - 0.5) * math.exp(-20.0) / (1 + math.exp(-20.0)) ** 2  # 1 − σ(20) in floats keeps 8 digits
    delta_h = delta_o * 20.0 * slope_h
    return {"slope_h": slope_h, "one_minus": tail / (1 + tail), "delta_h": delta_h, "grad": 30.0 * delta_h}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_saturated_hidden_neuron_shows_its_exact_numbers(tmp_path, lang):
    need_tex(lang)
    numbers = saturated_numbers()
    spec = tmp_path / "tiny.toml"
    spec.write_text(SATURATED)
    words = flat(text_of(build(tmp_path, spec, "pdf", "--lang", lang)))
    assert "(1 − 1)" not in words and "1 · (1 − 1)" not in words
    # out_h1 is written as what it is, 1 − 3.2e-27, and the factor out(1 − out) from it
    assert f"(1 − {sci(numbers['one_minus'])}) · {sci(numbers['slope_h'])}" in words
    # δ_h1 is 6.6e-35, not 0, and ∂E/∂w = x1 δ_h1 multiplies that δ
    assert f"= {sci(numbers['delta_h'])}" in words
    assert f"30 · {sci(numbers['delta_h'])} = {sci(numbers['grad'])}" in words
    assert "30 · 0 =" not in words and "= δh1 = 0" not in words
    meaning = "output of neuron h1" if lang == "en" else "神经元 h1 的输出"
    assert f"{meaning} 1 − {sci(numbers['one_minus'])}" in words  # the symbol table says the same
    # the update table's gradient is the derivation's, not the float's 0
    assert re.search(r"wh1,x1 2 " + re.escape(sci(numbers["grad"])) + " 2", words), words
    page = page_words(build(tmp_path, spec, "html", "--lang", lang))
    assert "1 − 1" not in page and "30 · 0 =" not in page
    mantissa = f"{numbers['delta_h']:.7e}".split("e")[0]
    assert mantissa in page
    # the finite differences cannot see a gradient of 2e-33 (E± are equal floats): said, never "digits agree"
    assert "digits agree" not in words and "位有效数字一致" not in words
    assert ("cannot see a gradient this small" if lang == "en" else "看不到如此小的梯度") in words


def test_one_output_and_one_neuron_get_sentences_of_their_own(tmp_path):
    """E of one output has no other terms that drop out; a one-neuron layer's bias feeds no other neuron."""
    spec = tmp_path / "one.toml"
    spec.write_text(
        'name = "one"\n[loss]\nkind = "half_sse"\n[[layers]]\nnames = ["x1", "x2"]\nvalues = [0.5, -0.3]\n'
        '[[layers]]\nnames = ["o1"]\nactivation = "sigmoid"\nweights = [[0.4, 0.2]]\nbias = 0.1\ntargets = [1.0]\n'
    )
    tex = build(tmp_path, spec, "tex", "--format", "tex").read_text()
    assert "the others drop out" not in tex and "$E$ is the single term" in tex
    assert "feeds every neuron of the layer" not in tex and "one-neuron layer" in tex


def test_the_softmax_note_uses_the_lecture_s_own_target_symbol(tmp_path):
    """A lecture in Nielsen's a, z and y writes the cross-entropy note with y, and says what [i=j] is."""
    tex = build(tmp_path, "digits", "tex", "--format", "tex").read_text()
    note = tex[tex.index("Why $\\delta =") :]
    note = note[: note.index("}\n")]
    assert "y_j" in note and "t_j" not in note and "is 1 when $i = j$ and 0 otherwise" in note


# -- 2. a loss without targets ------------------------------------------------------------------------------

E_IS_OUTPUT = """
name = "eo"
title = "E equals the output"
[loss]
expr = "o"
[[layers]]
names = ["x1", "x2"]
values = [0.5, 1.0]
[[layers]]
names = ["o1"]
activation = "tanh"
weights = [[0.3, -0.2]]
weight_names = [["w1", "w2"]]
bias = 0.1
bias_names = "b"
{targets}
[training]
learning_rate = 0.5
"""


@pytest.mark.parametrize("targets", ["", "targets = [0.0]"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_loss_without_targets_builds_and_names_no_target(tmp_path, targets, lang):
    need_tex(lang)
    spec = tmp_path / "eo.toml"
    spec.write_text(E_IS_OUTPUT.format(targets=targets))
    words = flat(text_of(build(tmp_path, spec, "pdf", "--lang", lang, "--exercises")))
    assert "target" not in words and "目标" not in words
    out = math.tanh(0.3 * 0.5 - 0.2 * 1.0 + 0.1)  # E = out_o1
    assert g8(out) in words
    page = page_words(build(tmp_path, spec, "html", "--lang", lang))
    assert "target" not in page and "目标" not in page


# -- 3 and 12. wide rows, and the web page's operators and glued words ----------------------------------------


def test_the_digits_softmax_is_one_fraction_that_fits(tmp_path):
    need_tex()
    from test_lecture import overflowing_pages
    from test_lecture_review import measure

    pdf = build(tmp_path, "digits", "pdf", "--tex")
    assert overflowing_pages(pdf) == []
    tex = pdf.with_suffix(".tex").read_text()
    # out = e^{z1} / (e^{z1} + e^{z2} + ⋯ + e^{z10}): one fraction, its denominator by its ends
    assert r"\frac{e^{z^{3}_{1}}}{e^{z^{3}_{1}} + e^{z^{3}_{2}} + \dots + e^{z^{3}_{10}}}" in tex
    assert r"\cdot \frac{1}{e^{" not in tex
    page = build(tmp_path, "digits", "html")
    phone = measure(page, tmp_path, 390)
    assert phone["page"] <= 390 and phone["wide"] == 0


def test_a_continued_row_starts_with_a_binary_operator_and_words_stay_glued(tmp_path):
    page = build(tmp_path, "mazur", "html").read_text()
    starts = re.findall(
        r'<span class="piece"><math[^>]*displaystyle="true"><mrow><mo([^>]*)>(&#x0002B;|&#x000B7;|&#x02212;)</mo>', page
    )
    assert starts and all(attrs == ' form="infix"' for attrs, _ in starts), set(starts)
    # "δs": the s is never carried to the next line alone
    assert re.search(
        r'<span style="white-space:nowrap"><math\b(?:(?!</math>).)*&#x003B4;(?:(?!</math>).)*</math>s', page
    )


# -- 4 and 5. what a weight's name says; what each source's numbers show --------------------------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mazur_outputs() -> tuple[float, float]:
    h1, h2 = sigmoid(0.15 * 0.05 + 0.2 * 0.1 + 0.35), sigmoid(0.25 * 0.05 + 0.3 * 0.1 + 0.35)
    return sigmoid(0.4 * h1 + 0.45 * h2 + 0.6), sigmoid(0.5 * h1 + 0.55 * h2 + 0.6)


@pytest.fixture(scope="module")
def mazur_words(tmp_path_factory):
    need_tex()
    folder = tmp_path_factory.mktemp("mazur3")
    pdf = build(folder, "mazur", "pdf", "--tex", "--exercises", "--mazur-steps")
    return flat(text_of(pdf)), pdf.with_suffix(".tex").read_text()


@pytest.fixture(scope="module")
def mazur_zh(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mazur3zh")
    return page_words(build(folder, "mazur", "html", "--lang", "zh", "--exercises", "--mazur-steps"))


def test_a_numbered_weight_is_not_said_to_be_named_by_its_neurons(mazur_words, mazur_zh, tmp_path):
    words, tex = mazur_words
    assert "named by the two neurons" not in words
    assert "w1 is the weight from neuron i1 into neuron h1" in words
    assert r"$w_{1}$ is the weight from neuron i1 into neuron h1" in tex  # h1 and i1 set alike, as names
    assert "命名" not in mazur_zh and "从神经元 i1 进入神经元 h1" in mazur_zh
    # default names spell the neurons: there the sentence is true and stays
    spec = tmp_path / "tiny.toml"
    spec.write_text(SATURATED)
    tiny = page_words(build(tmp_path, spec, "html"))
    assert "A weight is named by the two neurons it joins" in tiny and "into neuron h1, from x1" in tiny


def test_a_misprint_gets_the_cause_its_source_shows(mazur_words, mazur_zh):
    words, _ = mazur_words
    out_o1, _ = mazur_outputs()
    right = f"{out_o1:.8f}"
    assert right == "0.75136507"
    next_number = f"{out_o1 - 0.01:.8f}"  # ∂E/∂out_o1 = out_o1 − target_o1, as the copy prints it next
    assert next_number == "0.74136507"
    assert f"the Chinese copy prints outo1 = 0.75136079, not {right}" in words
    assert f"Its own next number, ∂E/∂outo1 = {next_number}, is computed from the right value {right}" in words
    assert "copying slip" not in words
    # E after "10,000" updates is 9,999 correct ones; the outputs are 10,000 with the slip: two computations
    assert "off-by-one" not in words and "come from different computations" in words
    assert "Mazur’s article and the Chinese copy both print outo2 = 0.772928465" in words
    assert "它自己的下一个数" in mazur_zh and "来自不同的计算" in mazur_zh


# -- 6 and 7. every symbol introduced, one notation, a consistent title ----------------------------------------


def test_symbols_are_introduced_and_named_one_way(mazur_words, tmp_path):
    words, _ = mazur_words
    # the path label of a contribution is explained before it is used
    assert "with an output as subscript is the part of the gradient carried along the path through that output" in words
    assert "bj l b2 bias of neuron j of layer l" in words or "blj b2 bias of neuron j of layer l" in words
    assert "E = Eo1 + Eo2 , where Eo1 is the error of output o1 alone" in words  # --mazur-steps defines E_o1
    digits = build(tmp_path, "digits", "tex", name="digits").read_text()
    jacobian = digits.index(r"J_{ij} = \partial a^L_i/\partial z^L_j")
    assert jacobian < digits.index(r"\delta^L = J^{\top} \nabla_{a} C") and r"\nabla_{a} E" not in digits
    # a network named in a and z says ∂E/∂z, not ∂E/∂net, in the sentences and the table headers
    assert r"\partial E/\partial  z" in digits and r"\mathrm{net}" not in digits
    assert r"\partial z/\partial p" in digits
    big = flat(text_of(build(tmp_path, FIXTURES / "mnist_784_30_10.toml", "pdf", name="big")))
    assert "biasesb21...b230" in big.replace(". . .", "...").replace(" ", "")


def test_the_tanh_example_is_titled_by_its_layers_and_explains_the_mean(tmp_path):
    need_tex()
    words = flat(text_of(build(tmp_path, "nielsen_tanh", "pdf")))
    assert words.startswith("A 3-4-3-2 tanh network") and "has 4 layers of 3–4–3–2 neurons" in words
    assert "three-layer" not in words
    assert "The mean is taken over the 2 outputs: that is the factor" in words


# -- 8. why backpropagation is fast, counted right ---------------------------------------------------------------

NO_HIDDEN = """
name = "nohid"
title = "One neuron, no hidden layer"
[loss]
kind = "half_sse"
[[layers]]
names = ["x1", "x2"]
values = [0.5, 1.0]
[[layers]]
names = ["o1"]
activation = "sigmoid"
weights = [[0.3, -0.2]]
weight_names = [["w1", "w2"]]
bias = 0.1
bias_names = "b"
targets = [1.0]
"""


def test_why_backpropagation_is_fast_counts_the_forward_pass(mazur_words, mazur_zh, tmp_path):
    words, _ = mazur_words
    forward = 2 * 2 + 2 * 2  # one product per weight: 8
    # path by path: w1..w4 have 2 paths of 5 factors (4 products each), w5..w8 one path of 3 (2 products)
    paths = 4 * 2 * 4 + 4 * 2
    backward = 2 + 2 * (2 + 1) + forward  # output δs, hidden δs (a sum of 2 and f'), every δ·out
    assert (paths, backward) == (40, 16)
    assert f"{backward} multiplications for all 8, against {forward} for the weighted sums of the forward pass" in words
    assert f"Here that is {paths / backward:.2g} times fewer multiplications" in words
    assert "less work" not in words and "one more forward pass" not in words
    tight = mazur_zh.replace(" ", "")
    assert f"仅为逐条路径计算的1/{paths / backward:.2g}" in tight and "少了" not in tight
    assert "仅为前者的1/" in tight and "少9" not in tight
    spec = tmp_path / "nohid.toml"
    spec.write_text(NO_HIDDEN)
    nohid = page_words(build(tmp_path, spec, "html"))
    assert "along a single path of 3 factors" in nohid and "1 paths" not in nohid
    assert "from the" not in nohid.split("Backpropagation computes")[1].split(".")[0]  # no BP2 clause


# -- 9 and 13. the "why" box holds its derivation; the sheet and key read cleanly --------------------------------


def test_the_note_on_dE_dout_holds_its_derivation(mazur_words, tmp_path):
    words, tex = mazur_words
    note = tex[tex.index(r"\whynote{Where $\partial E/\partial \mathrm{out}_{o1}$ comes from") :]
    box = note[: note.index(r"\end{align*}}")]  # the box closes after its derivation
    assert r"\begin{align*}" in box and r"\frac{\partial}{\partial \mathrm{out}_{o1}}" in box
    assert not re.search(r"∂E/∂ \w", words)  # no stray space between ∂ and its symbol
    page = build(tmp_path, "mazur", "html").read_text()
    box = page[page.index('<div class="note"><p>Where') :]
    assert box.index('<div class="eqs">') < box.index("</div></div></div>")


def test_the_sheet_and_key_read_cleanly(tmp_path):
    need_tex()
    out = tmp_path / "x"
    result = CliRunner().invoke(main, ["exercises", "mazur", "--students", "1", "--seed", "7", "-o", str(out)])
    assert result.exit_code == 0, result.output
    sheet = flat(text_of(out / "student-01-sheet.pdf"))
    key = flat(text_of(out / "student-01-key.pdf"))
    for words in (sheet, key):
        assert "Layers 2 and 3: f (x)" in words and "Layer 2: f" not in words
    # η · ∂E/∂w1: a positive gradient is not bracketed
    update = re.search(r"w1 − η ∂E/∂w1 = ([\d.]+) − 0.5 · (\(?[\d.e−-]+\)?) = (\d+\.\d+)", key)
    assert update, key
    old, g, new = update.groups()
    assert not g.startswith("(") and float(old) - 0.5 * float(g) == pytest.approx(float(new), rel=1e-7)
    assert "--claims student-01-answers.txt" in key and (out / "student-01-answers.txt").exists()


# -- 10. closed forms and δ substitutions ------------------------------------------------------------------------


def test_closed_forms_keep_an_activation_with_its_derivative(mazur_words, tmp_path):
    words, tex = mazur_words
    start = tex.index(r"\section{A closed form}")
    closed = tex[start : tex.index("where", start)]
    assert r"f(\mathrm{net}_{h1})(1 - f(\mathrm{net}_{h1}))" in closed  # one unit: no ·, no break
    assert r"f(\mathrm{net}_{h1}) \cdot" not in closed
    assert "Write f (x) for the activation of layers 2 and 3 (sigmoid)." in words  # sigmoid in code font
    assert "net inputs alone" not in words
    # both hidden δs substitute every factor, each from its own output (an independent forward pass)
    h1, h2 = sigmoid(0.15 * 0.05 + 0.2 * 0.1 + 0.35), sigmoid(0.25 * 0.05 + 0.3 * 0.1 + 0.35)
    for h in (h1, h2):
        assert f"{g8(h)} · (1 − {g8(h)})" in words
    tanh = build(tmp_path, "nielsen_tanh", "tex", name="tanh").read_text()
    assert r"\left(z^" not in tanh and r"\tanh{\left(" not in tanh  # no fence grown by the scripts


# -- 14. small wording ---------------------------------------------------------------------------------------------


def test_small_wording(mazur_words, tmp_path):
    words, tex = mazur_words
    assert "Each edge is labelled with its weight’s name and value." in words
    assert "e.g. from h1 into o1" in words and "from outh1 into outo1" not in words
    assert "If the hidden layer used" in words and "first hidden layer" not in words  # Mazur has one
    assert r"\texttt{sigmoid}" in tex and "the sigmoid" not in words
    big = flat(text_of(build(tmp_path, FIXTURES / "mnist_784_30_10.toml", "pdf", name="big")))
    # the output layer: 30·10 weights and 10 biases, one derived in full, so 309 others in the table's note
    assert "The 8 largest of the layer’s other 309 gradients" in big and "none of them is exactly 0" in big
    assert not re.search(r"(?<![\d,])0 of them are exactly 0", big)


# -- 11. pages fill -----------------------------------------------------------------------------------------------


def text_depths(pdf: Path) -> list[float]:
    """For each page, how far down its text reaches (the page number at the foot set aside), as a fraction."""
    import subprocess

    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    depths = []
    for page in boxes.split("<page ")[1:]:
        height = float(re.search(r'height="([\d.]+)"', page).group(1))
        bottoms = [float(y) for y in re.findall(r'yMax="([\d.]+)"', page) if float(y) < height - 80]
        depths.append(max(bottoms, default=0.0) / height)
    return depths


def page_of(pdf: Path, words: str) -> int:
    pages = text_of(pdf).split("\f")
    return next(i for i, page in enumerate(pages) if words in flat(page))


@pytest.mark.parametrize(
    "spec",
    ["mazur", "nielsen_tanh", "digits", str(FIXTURES / "mnist_784_30_10.toml"), str(FIXTURES / "tanh_2321.toml")],
)
def test_pages_fill_and_what_belongs_together_stays_together(tmp_path, spec):
    need_tex()
    pdf = build(tmp_path, spec, "pdf")
    depths = text_depths(pdf)
    # every page but the last is mostly full (the text ends about 0.9 down a full page; a heading with its loss
    # plot cannot share a page that has a third left)
    assert all(d >= 0.6 for d in depths[:-1]), str([round(d, 2) for d in depths])
    # the sentence before the loss plot is on the plot's page; a closed form is on its "where" block's page
    plot = page_of(pdf, "Repeating the update")
    assert "loss E" in flat(text_of(pdf).split("\f")[plot])
    closed = text_of(pdf).split("\f")[page_of(pdf, "A closed form")].split("A closed form")[1]
    if "mnist" not in spec and "no short closed form" not in closed and "too large" not in closed:
        assert re.search(r"^\s*where\s*$", closed, re.M), closed  # its "where" block begins on its page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_answer_key_ends_on_a_page_worth_printing(tmp_path, lang):
    need_tex(lang)
    out = tmp_path / "x"
    result = CliRunner().invoke(
        main, ["exercises", "mazur", "--students", "1", "--seed", "7", "--lang", lang, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    depths = text_depths(out / "student-01-key.pdf")
    assert depths[-1] >= 0.45, [round(d, 2) for d in depths]
    sheet = flat(text_of(out / "student-01-sheet.pdf"))
    assert (
        "outh1 = f (neth1 )" in sheet or "outh1 = f (neth1)" in sheet
    )  # an out is its layer's f of its net: one line, defined once below


def test_a_lone_negative_symbol_is_not_written_twice(tmp_path):
    """w = (−0.6475) = −0.6475 says nothing the value does not: the substituted bracket is left out."""
    tex = build(tmp_path, "nielsen_tanh", "tex", "--format", "tex").read_text()
    plain = re.sub(r"\\textcolor\{\w+\}\{([^{}]*)\}", r"\1", tex).replace(r"\left(", "(").replace(r"\right)", ")")
    assert not re.search(r"= \(-([\d.]+)\) = -\1\b", plain)
    assert re.search(r"w\^\{4\}_\{1,1\}\}? = -0\.6475", plain)
