"""Issue 22, the lecture's second review: right about its sources, clear notation, Nielsen's "why".

Each test reads what a student reads (the PDF's text via pdftotext, the LaTeX source, the web page
in Chromium) and takes its numbers from oracles that never import derive.
"""

import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import need_tex
from oracles import backprop, mazur
from test_html import browse
from test_lecture import overflowing_pages, text_of

from derive.app.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
README = Path(__file__).parent.parent / "README.md"


def g8(value: float) -> str:
    return f"{value:.8g}"


def build(tmp_path: Path, spec, suffix: str, *args: str, name: str = "lecture") -> Path:
    out = tmp_path / f"{name}.{suffix}"
    result = CliRunner().invoke(main, ["lecture", str(spec), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def mazur_build(tmp_path_factory):
    """The Mazur lecture with its exercises and Mazur's intermediate step: the PDF, its text and its LaTeX."""
    need_tex()
    folder = tmp_path_factory.mktemp("mazur")
    pdf = build(folder, "mazur", "pdf", "--tex", "--exercises", "--mazur-steps")
    return pdf, text_of(pdf), pdf.with_suffix(".tex").read_text()


@pytest.fixture(scope="module")
def tanh_build(tmp_path_factory):
    need_tex()
    folder = tmp_path_factory.mktemp("tanh")
    pdf = build(folder, FIXTURES / "tanh_2321.toml", "pdf", "--tex")
    return pdf, text_of(pdf), pdf.with_suffix(".tex").read_text()


@pytest.fixture(scope="module")
def big_build(tmp_path_factory):
    need_tex()
    folder = tmp_path_factory.mktemp("big")
    pdf = build(folder, FIXTURES / "mnist_784_30_10.toml", "pdf", "--tex")
    return pdf, text_of(pdf), pdf.with_suffix(".tex").read_text()


# -- 1. right about its sources ----------------------------------------------------------------------


def updated_weights_update(steps: int) -> tuple[list[float], np.ndarray]:
    """Mazur's network trained with the slip: the output weights updated first, the hidden δs from the new ones."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    w1, w2 = np.array([[0.15, 0.2], [0.25, 0.3]]), np.array([[0.4, 0.45], [0.5, 0.55]])
    x, t = np.array([0.05, 0.1]), np.array([0.01, 0.99])
    losses = []
    for step in range(steps + 1):
        h = sig(w1 @ x + 0.35)
        o = sig(w2 @ h + 0.6)
        losses.append(0.5 * float(np.sum((t - o) ** 2)))
        if step == steps:
            return losses, o
        d_o = (o - t) * o * (1 - o)
        w2 = w2 - 0.5 * np.outer(d_o, h)
        d_h = (w2.T @ d_o) * h * (1 - h)  # the slip: w2 already updated
        w1 = w1 - 0.5 * np.outer(d_h, x)
    raise AssertionError


def test_each_source_is_credited_with_what_it_prints(mazur_build):
    _, text, _ = mazur_build
    words = flat(text)
    # Mazur's post prints 0.75136507; the typo is the Chinese copy's, and the lecture says so
    assert "Mazur’s article prints outo1 = 0.75136507, which agrees" in words
    assert "the Chinese copy prints outo1 = 0.75136079, not 0.75136507" in words
    assert "Mazur’s article prints outo1 = 0.75136079" not in words


def test_a_differing_number_gets_the_cause_that_reproduces_it(mazur_build):
    """E' = 0.291027924 is the update with the hidden δs from the already-updated w5–w8 (an oracle of its own)."""
    _, text, _ = mazur_build
    words = flat(text)
    losses, _ = updated_weights_update(1)
    assert g8(losses[1]) == "0.29102792" and f"{losses[1]:.9f}" == "0.291027924"
    assert "prints E = 0.291027924 after the update" in words
    assert "hidden δs are computed with the output weights w5 –w8 already updated (0.291027924)" in words
    assert "warns against" in words  # tied to the note that every factor uses the old weights
    _, outputs = updated_weights_update(10_000)
    assert f"{outputs[0]:.9f}" == "0.015912196" and f"{outputs[1]:.9f}" == "0.984065734"
    assert words.count("each computes the hidden δs with the output weights") == 2
    assert "misprint" not in words and "slip in its working" not in words  # no guesses


# -- 2. notation -----------------------------------------------------------------------------------------


def test_a_shared_bias_is_no_power_and_layers_are_named_one_way(tanh_build):
    _, text, tex = tanh_build
    assert "b^{(4)}" in tex and "b^{4}" not in tex
    words = flat(text)
    assert "Layer 3 (hidden)" in words and "Layer 2 (hidden)" in words and "Layer 4 (output)" in words
    assert "Hidden layer" not in words


def test_every_symbol_is_introduced_before_it_is_used(big_build):
    _, text, _ = big_build
    words = flat(text)
    targets = words.index("have targets y1 . . . y10")
    assert targets < words.index("The loss, half the sum of squared errors")
    naming = words.index("is the weight into neuron 1 of layer")  # w^2_{1,1}: into neuron 1 of layer 2, from x1
    assert naming < words.index("The forward pass")
    # ∇aC is defined where BP1 first uses it
    assert "the vector of the derivatives ∂C/∂a" in words
    # the why note on ∂E/∂out names this network's own symbols, not a generic "target − out"
    assert "(target − out)" not in words


# -- 3. the small path diagrams are labelled -------------------------------------------------------------


def test_path_diagrams_label_every_neuron(mazur_build, tmp_path):
    _, _, tex = mazur_build
    small = re.findall(
        r"^\s*\\node\[(?:neuron|inputneuron|outputneuron),small\] \(\w+\) at \([^)]*\) \{(.*)\};$", tex, re.M
    )
    assert small and all(label.strip() for label in small)
    assert {"$\\text{h1}$", "$\\text{o2}$"} <= set(small)
    page = build(tmp_path, "mazur", "html").read_text()
    for svg in re.findall(r'<svg class="path-diagram".*?</svg>', page, re.S):
        circles = svg.count("<circle")
        labels = svg.count('class="node-label"') + svg.count("<foreignObject")
        assert circles == labels == 6
        assert ">h1</text>" in svg and ">o2</text>" in svg


# -- 4. the why notes are set as the teaching -------------------------------------------------------------


def test_why_notes_are_boxed_in_normal_type(mazur_build, tmp_path):
    _, _, tex = mazur_build
    assert re.search(r"\\whynote\{Why the second form matters", tex)
    assert re.search(r"\\whynote\{Saturation", tex)
    assert "\\small Why" not in tex
    metrics = measure(build(tmp_path, "mazur", "html"), tmp_path, 1000)
    assert metrics["note_font"] == metrics["body_font"]  # normal type
    assert metrics["note_border"] >= 1 and metrics["note_background"] != "rgba(0, 0, 0, 0)"


# -- 5. formulas in the order a person writes them ---------------------------------------------------------


def test_products_read_in_the_chain_rules_order(mazur_build, tanh_build):
    _, _, tex = mazur_build
    # the closed form: the activation beside its derivative (one unit, no ·), the loss's factor first
    assert r"f(\mathrm{net}_{h1})(1 - f(\mathrm{net}_{h1}))" in tex
    assert r"(f(\mathrm{net}_{o1}) - \mathrm{target}_{o1})\,f(\mathrm{net}_{o1})\,(1 - f(\mathrm{net}_{o1}))" in tex
    _, _, ttex = tanh_build
    assert "sinh" not in ttex and r"\tanh{(\mathrm{out}_{y} - \mathrm{target}_{y} )}" in ttex
    # δ_g1: the numbers stand in the formula's order, δ_y · w · (1 − out²), each factor substituted as δ_h's are
    row = next(line for line in ttex.splitlines() if line.strip().startswith(r"\delta_{g1} &= \delta_{y}"))
    formula = row.split("=")[1]
    numbers = ttex[ttex.index(row) + len(row) :].split("\n")[1]
    assert formula.index(r"\delta_{y}") < formula.index("w_{y,g1}") < formula.index(r"(1 - ")
    values = [float(v) for v in re.findall(r"-?\d+\.\d+", numbers)]
    z = tanh_oracle()
    assert values == pytest.approx([z["delta_y"], 0.7, z["out_g1"]], rel=1e-7)


def tanh_oracle() -> dict[str, float]:
    """The tanh 2-3-2-1 fixture's forward pass and output δ in plain NumPy (log-cosh loss: δ_y = tanh(y − t))."""
    x = np.array([0.6, -0.3])
    h = np.tanh(np.array([[0.2, -0.4], [0.5, 0.1], [-0.3, 0.3]]) @ x + np.array([0.1, -0.1, 0.05]))
    g = np.tanh(np.array([[0.3, -0.2, 0.4], [-0.5, 0.25, 0.1]]) @ h + np.array([0.0, 0.2]))
    y = float(np.array([0.7, -0.6]) @ g + 0.1)
    return {"out_g1": float(g[0]), "delta_y": math.tanh(y - 0.5)}


def test_no_line_is_too_wide(mazur_build, tanh_build, big_build):
    for pdf, _, _ in (mazur_build, tanh_build, big_build):
        assert overflowing_pages(pdf) == [], pdf.name


# -- 6. and 7. networks without a hidden layer, tiny numbers --------------------------------------------------

SATURATED = """
name = "saturated"
[loss]
{loss}
[[layers]]
names = ["x1", "x2"]
values = [1.0, 0.5]
[[layers]]
names = ["o"]
activation = "sigmoid"
weights = [[20.0, 16.0]]
bias = 0.0
targets = [1.0]
[training]
learning_rate = 0.5
steps = 3
"""


@pytest.mark.parametrize("loss", ['kind = "half_sse"', 'expr = "o"'])
def test_a_network_without_a_hidden_layer_is_described_as_it_is(tmp_path, loss):
    need_tex()
    spec = tmp_path / "saturated.toml"
    spec.write_text(SATURATED.format(loss=loss))
    words = flat(text_of(build(tmp_path, spec, "pdf", "--exercises")))
    assert "hidden neuron" not in words and "BP2 for the hidden" not in words
    assert "for the first output neuron they are neto and outo" in words
    assert "e.g. from x1 into o " in words and "from outo into outo" not in words
    assert "this network has none" in words
    assert "first hidden layer" not in words  # no exercise about a layer it does not have
    assert ("compares each output with its target" in words) == ("half_sse" in loss)


def test_a_saturated_output_never_reads_one_minus_one(tmp_path):
    need_tex()
    spec = tmp_path / "saturated.toml"
    spec.write_text(SATURATED.format(loss='kind = "half_sse"'))
    out = 1 / (1 + math.exp(-(20.0 + 8.0)))  # the oracle: σ(28) = 1 − 6.9e-13
    assert 6.9e-13 < 1 - out < 7e-13
    words = flat(text_of(build(tmp_path, spec, "pdf")))
    assert "(1 − 1)" not in words and "1 · (1 − 1)" not in words and "1.0 ·" not in words
    shown = f"{out:.14g}"
    assert f"{shown} · (1 − {shown})" in words
    page = build(tmp_path, spec, "html").read_text()
    assert f"<mn>{shown}</mn>" in page and "<mn>1.0</mn>" not in page
    # "no new exponentials" is said of σ and tanh, not of relu
    relu = SATURATED.format(loss='kind = "half_sse"').replace('"sigmoid"', '"relu"')
    spec.write_text(relu)
    words = flat(text_of(build(tmp_path, spec, "pdf", name="relu")))
    assert "no new exponentials" not in words


# -- 8. layout ------------------------------------------------------------------------------------------------


def page_lines(pdf: Path) -> list[int]:
    return [len([line for line in page.splitlines() if line.strip()]) for page in text_of(pdf).split("\f")[:-1]]


def test_no_page_is_left_nearly_blank(mazur_build, tanh_build, big_build):
    for pdf, _, _ in (mazur_build, tanh_build, big_build):
        lines = page_lines(pdf)
        # every page carries a real share of text (a page's number counts as one line); the exercises' page may be short
        assert all(n >= 8 for n in lines), (pdf.name, lines)
    _, text, _ = mazur_build
    first = text.split("\f")[0]
    assert "Notation and the chain rule" in first  # page 1 is not the drawing alone


def test_the_readme_counts_the_pages_built(tmp_path, mazur_build, big_build):
    need_tex("zh")
    readme = flat(README.read_text())
    counts = {
        "mazur": len(page_lines(build(tmp_path, "mazur", "pdf", name="plain"))),
        "zh": len(page_lines(build(tmp_path, "mazur", "pdf", "--lang", "zh", name="zh"))),
        "784": len(page_lines(big_build[0])),
    }
    assert f"writes `output/mazur.pdf` ({counts['mazur']} pages; {counts['zh']} in Chinese" in readme
    assert f"784-30-10 lecture (`tests/fixtures/mnist_784_30_10.toml`) has {counts['784']} pages" in readme


def test_an_answer_key_does_not_end_on_a_stray_line(tmp_path):
    need_tex()
    result = CliRunner().invoke(
        main, ["exercises", "mazur", "--students", "2", "--seed", "7", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    keys = sorted((tmp_path / "x").rglob("*key*.pdf"))
    assert keys
    for key in keys:
        lines = page_lines(key)
        assert len(lines) == 1 or lines[-1] >= 6, (key.name, lines)


# -- 9. exercises ask what the text has not answered ---------------------------------------------------------


def test_no_exercise_is_answered_before_it_is_asked(mazur_build):
    _, text, _ = mazur_build
    pages = text.split("\f")
    questions = next(i for i, p in enumerate(pages) if "Think before you compute" in p)
    body = "".join(pages[:questions])
    e, grad, _ = backprop(mazur())
    theta = mazur().flat()
    theta[5] += 0.01
    changed, _, _ = backprop(mazur().with_flat(theta))
    answers = "".join(pages[questions + 1 :])
    for value in (g8(grad[5] * 0.01), g8(changed - e)):
        assert value in answers and value not in body
    assert "update of w5" not in pages[questions]


# -- 10. the web page: path colours, a phone's width --------------------------------------------------------

PROBE = """<script>
const notes = document.querySelector('p.note'), body = document.querySelector('main p:not(.note)');
const ns = getComputedStyle(notes), bs = getComputedStyle(body);
const wide = [...document.querySelectorAll('.eqs, figure, .display, .scroll')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).length;
const coloured = [...document.querySelectorAll('.eqs .rhs[style]')].map(e => getComputedStyle(e).color);
const figures = [...document.querySelectorAll('figure svg')].map(s => s.getBoundingClientRect().right);
document.body.setAttribute('data-metrics', JSON.stringify({
  page: Math.max(...[...document.body.querySelectorAll('*')].map(e => e.getBoundingClientRect().right)),
  width: window.innerWidth,
  wide: wide, coloured: coloured,
  figure_right: Math.max(...figures), note_font: ns.fontSize, body_font: bs.fontSize,
  note_border: parseFloat(ns.borderLeftWidth), note_background: ns.backgroundColor}));
</script>"""


def measure(page: Path, tmp_path: Path, width: int, probe_script: str = PROBE) -> dict:
    """What Chromium lays out at this width (a copy of the page with a probe script; the page itself has none).

    The probe script leaves its findings as JSON in the body's data-metrics attribute."""
    probe = tmp_path / f"probe-{width}.html"
    # headless Chromium's window is at least 500 px wide: the page itself is narrowed to the width asked for
    style = f"<style>html {{ width: {width}px; }}</style>"
    probe.write_text(
        page.read_text().replace("</head>", style + "</head>").replace("</body>", probe_script + "</body>")
    )
    dom = browse(probe, tmp_path, "--dump-dom", f"--window-size={width},2000").stdout
    found = re.search(r"data-metrics=\"([^\"]*)\"", dom)
    assert found, dom[-500:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_on_a_phone_nothing_is_cut_off_and_paths_keep_their_colours(tmp_path, lang):
    page = build(tmp_path, "mazur", "html", "--lang", lang, "--exercises")
    phone = measure(page, tmp_path, 390)
    assert phone["page"] <= 390  # no sideways scrolling of the page
    assert phone["wide"] == 0  # no equation, drawing or table scrolls inside its box
    assert phone["figure_right"] <= 390
    # each path's rows in its colour, as in the PDF: the contributions of w1's two paths, red and blue
    assert {"rgb(200, 40, 40)", "rgb(30, 90, 200)"} <= set(phone["coloured"])
    desktop = measure(page, tmp_path, 1000)
    assert desktop["wide"] == 0


# -- Nielsen's why and Mazur's warmth ----------------------------------------------------------------------------


def test_bp1_to_bp4_are_derived_from_the_path_sum(mazur_build):
    _, text, tex = mazur_build
    words = flat(text)
    for part in ("BP1. neto1 reaches E only through outo1", "BP2. Every path from neth1", "BP3 and BP4."):
        assert part in words
    # BP2 as the grouped path sum: (∂E/∂net_o1 ∂net_o1/∂out_h1 + ∂E/∂net_o2 ∂net_o2/∂out_h1) ∂out_h1/∂net_h1
    assert re.search(
        r"\\delta_\{h1\} &= \\frac\{\\partial E\}\{\\partial \\mathrm\{net\}_\{h1\}\} \\\\\*?\s*"  # \\* joins a chain's rows
        r"&= \\left\(\\frac\{\\partial E\}\{\\partial \\mathrm\{net\}_\{o1\}\}",
        tex,
    )


def paths_and_work(sizes: tuple[int, ...]) -> tuple[int, int, int]:
    """An oracle for "why it is fast": paths from a first-layer weight, path-by-path and backprop multiplications."""
    paths = math.prod(sizes[2:])
    layers = len(sizes) - 1
    by_paths = sum(
        sizes[i] * sizes[i - 1] * math.prod(sizes[i + 1 :]) * (2 * (layers - i) + 2) for i in range(1, layers + 1)
    )
    backward = (
        sizes[-1]
        + sum(sizes[i] * (sizes[i + 1] + 1) for i in range(1, layers))
        + sum(sizes[i] * sizes[i - 1] for i in range(1, layers + 1))
    )
    return paths, by_paths, backward


def test_why_backpropagation_is_fast_counts_the_networks_paths(mazur_build, big_build):
    words = flat(mazur_build[1])
    paths, by_paths, backward = paths_and_work((2, 2, 2))
    assert f"reaches E along {paths} paths of 5 factors each" in words
    assert f"the 8 weight gradients take {by_paths} multiplications" in words
    assert f"{backward} multiplications for all 8" in words
    ref_paths, ref_total, ref_backward = paths_and_work((784, 256, 256, 10))
    assert f"along {ref_paths:,} paths" in words and f"against {ref_backward:,} for one backward pass" in words
    assert f"{round(ref_total / ref_backward):,} times fewer" in words
    big = flat(big_build[1])
    paths, by_paths, backward = paths_and_work((784, 30, 10))
    assert f"along {paths} paths of 5 factors each" in big and f"take {by_paths:,} multiplications" in big


def test_mazurs_intermediate_step_is_an_option(mazur_build, tmp_path):
    _, text, _ = mazur_build
    words = flat(text)
    _, _, inner = backprop(mazur())
    d_o1, d_o2 = inner["delta"][2]
    parts = (0.4 * d_o1, 0.5 * d_o2)
    assert g8(parts[0]) == "0.055399425" and g8(sum(parts)) == "0.036350306"  # Mazur's own numbers
    for value in (*parts, sum(parts)):
        assert g8(value).replace("-", "−") in words
    assert "Mazur’s way to the same number" in words
    plain = flat(text_of(build(tmp_path, "mazur", "pdf")))
    assert "Mazur’s way" not in plain and g8(sum(parts)) not in plain
    help_text = CliRunner().invoke(main, ["lecture", "--help"]).output
    assert "--mazur-steps" in help_text
    assert "--mazur-steps" in README.read_text()


def test_a_shared_bias_is_drawn_as_a_node_with_edges(mazur_build):
    _, _, tex = mazur_build
    assert re.search(r"\\draw\[->, gray, dashed\] \(bias1\) -- \(n1x0\)", tex)
    assert re.search(r"\\draw\[->, gray, dashed\] \(bias2\) -- \(n2x1\)", tex)


def test_the_chinese_lecture_has_every_new_part(tmp_path):
    need_tex("zh")
    pdf = build(tmp_path, "mazur", "pdf", "--lang", "zh", "--exercises", "--mazur-steps")
    words = flat(text_of(pdf))
    for part in ("中文译本", "为什么反向传播快", "第 2 层（隐藏层）", "Mazur 的算法", "BP2。"):
        assert part in words, part
    assert overflowing_pages(pdf) == []
    assert subprocess.run(["pdfinfo", str(pdf)], capture_output=True, check=True).returncode == 0


def test_a_number_gets_more_digits_only_where_it_would_read_as_a_whole_number():
    from derive.present.numbers import latex_number

    assert latex_number(1 - 6.9144001e-13) == "0.99999999999931"  # not 1
    assert latex_number(100 / 28, 2) == "3.6" and latex_number(0.75136507) == "0.75136507"
    assert latex_number(1.0) == "1" and latex_number(5.00000004) == "5.00000004"
