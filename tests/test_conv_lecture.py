"""The conv lecture: built for real (PDF in English and Chinese, the web page in Chromium), read back, and every
number checked against PyTorch autograd on the spec's own data (tests/conv_oracle.py, which never imports derive).

The lecture follows one kernel weight's gradient as a sum over its uses; the numbers a student reads there (the
feature maps, the δ map, the gradient, the number of uses, the bias gradient, the update) must be torch's.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import need_tex, require_torch
from conv_oracle import compute, oracle_net, train
from test_html import Page, browse, external_references

from derive.app.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "derive" / "examples"


# -- the oracle on a spec's own data (conv_oracle.oracle_net) --------------------------------------


def tinyconv() -> dict:
    return tomllib.loads((EXAMPLES / "tinyconv.toml").read_text())


def g4(value: float) -> str:
    """A map's entry as the lecture's grids show it: 4 significant digits."""
    return f"{value:.4g}"


def g8(value: float) -> str:
    return f"{value:.8g}"


def channel_of_most_deltas(deltas: list[float], channels: int) -> int:
    """The feature map whose δ map has the most non-zero entries (the first on a tie): the one the lecture follows."""
    per = len(deltas) // channels
    counts = [sum(d != 0 for d in deltas[c * per : (c + 1) * per]) for c in range(channels)]
    return max(range(channels), key=lambda c: (counts[c], -c))


@pytest.fixture(scope="module")
def torch_tiny():
    torch = require_torch()
    spec = tinyconv()
    net = oracle_net(spec)
    want = compute(torch, net)
    rate = spec["training"]["learning_rate"]
    want["after"] = train(torch, net, 1, rate)
    channels = len(spec["layers"][1]["weights"])
    channel = channel_of_most_deltas(want["delta"][0][0], channels)
    # the channel's first kernel weight whose gradient is not 0
    kernel = [(i, r, c) for i in range(1) for r in range(2) for c in range(2)]
    names = [f"w2_{channel + 1}_{i + 1}_{r + 1}_{c + 1}" for i, r, c in kernel]
    want["weight"] = next(n for n in names if want["grads"][n] != 0)
    want["channel"] = channel
    return want


# -- building -------------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def build(tmp_path: Path, spec: str, suffix: str, *args: str) -> Path:
    out = tmp_path / f"{spec}{suffix}"
    result = run("lecture", spec, "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def text_of(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.replace("−", "-")  # a typographic minus reads as one


def typeset(name: str) -> str:
    """A pattern for how pdftotext reads a map or kernel name typeset as w^{2}_{1,1,2,2}: its indices joined by
    commas, the layer superscript either inline or set apart on a line of its own."""
    stem, *indices = name.split("_")
    return re.escape(stem[0]) + f"(?:{re.escape(stem[1:])})?" + re.escape(",".join(indices))


def flat(text: str) -> str:
    """The text with runs of white space as one space (a formula's pieces sit apart in pdftotext's layout)."""
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def tiny_pdf(tmp_path_factory):
    need_tex()
    return text_of(build(tmp_path_factory.mktemp("en"), "tinyconv", ".pdf"))


@pytest.fixture(scope="module")
def tiny_zh(tmp_path_factory):
    need_tex("zh")
    return text_of(build(tmp_path_factory.mktemp("zh"), "tinyconv", ".pdf", "--lang", "zh"))


def assert_map_rows(text: str, values: list[float], columns: int) -> None:
    """Each row of a map, as its grid shows it, is on one line of the page, in order."""
    for start in range(0, len(values), columns):
        row = r"\s+".join(re.escape(g4(v)) for v in values[start : start + columns])
        assert re.search(row, text), f"row {[g4(v) for v in values[start : start + columns]]} not shown"


def check_tiny_numbers(text: str, want: dict) -> None:
    z = want["z"][0][0]  # layer 2's net inputs, channel first: 2 maps of 3×3
    a = want["a"][0][0]
    pooled = want["a"][1][0]  # layer 3: 2 maps of 2×2
    assert_map_rows(text, z[:9], 3)
    assert_map_rows(text, z[9:], 3)
    assert_map_rows(text, a[9:], 3)  # relu: a negative net input is 0 in the output map
    assert_map_rows(text, pooled[:4], 2)
    c = want["channel"]
    deltas = want["delta"][0][0][c * 9 : (c + 1) * 9]
    assert any(d != 0 for d in deltas) and any(d == 0 for d in deltas)
    assert_map_rows(text, deltas, 3)  # the δ map of the followed channel
    assert_map_rows(text, want["delta"][1][0][:4], 2)  # the pooled map's δ, back through the dense layer
    one = flat(text)
    w = want["weight"]
    g = want["grads"][w]
    assert re.search(f"∂E/∂{typeset(w)} = {re.escape(g8(g))}", one)
    assert f"b2_{c + 1}" in one or f"b2{c + 1}" in one.replace(" ", "")
    assert g8(want["grads"][f"b2_{c + 1}"]) in one
    # the update, from torch's own step
    assert g8(want["after"][w]) in one
    assert g8(want["E"]) in one


def test_the_pdf_shows_torchs_maps_deltas_and_gradient(tiny_pdf, torch_tiny):
    check_tiny_numbers(tiny_pdf, torch_tiny)
    uses = (4 - 2 + 1) * (4 - 2 + 1)  # a 2×2 kernel fits 3×3 times on a 4×4 input
    assert f"sum over these {uses} uses" in flat(tiny_pdf)
    for title in ("The forward pass", "The loss", "Where", "map of map", "The sum over uses", "The bias"):
        assert title in tiny_pdf
    # the order a student needs: the network, the forward pass, the loss, the gradient, the bias, the update
    places = [tiny_pdf.index(t) for t in ("The network", "The forward pass", "The loss", "The gradient of the kernel")]
    assert places == sorted(places)


def test_the_chinese_pdf_shows_the_same_numbers(tiny_zh, torch_tiny):
    check_tiny_numbers(tiny_zh, torch_tiny)
    assert "卷积核权重" in tiny_zh and "对使用求和" in tiny_zh


# -- the web page -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_html(tmp_path_factory):
    return build(tmp_path_factory.mktemp("html"), "tinyconv", ".html", "--exercises")


def test_the_web_page_has_the_maps_and_fetches_nothing(tiny_html, torch_tiny):
    source = tiny_html.read_text()
    page = Page(source)
    assert external_references(page) == [] and page.count("script") == 0
    assert "{{" not in source
    cells = re.findall(r'<td(?: class="(m\d)")?>([^<]*)</td>', source)
    texts = [t.replace("−", "-") for _, t in cells]
    c = torch_tiny["channel"]
    for value in torch_tiny["delta"][0][0][c * 9 : (c + 1) * 9]:
        assert g4(value) in texts
    marked = [t for m, t in cells if m == "m2"]  # red: non-zero δs, uses that count
    assert marked


def test_in_the_browser_every_map_and_number_shows(tiny_html, torch_tiny, tmp_path):
    dom = browse(tiny_html, tmp_path, "--dump-dom").stdout
    rendered, written = Page(dom), Page(tiny_html.read_text())
    assert rendered.count("table") == written.count("table") > 10
    assert rendered.count("math") == written.count("math") > 50
    w = torch_tiny["weight"]
    assert f"<mn>{g8(torch_tiny['grads'][w])}</mn>" in dom


@pytest.mark.parametrize("width", [1200, 390])
def test_screenshots(tiny_html, tmp_path, width):
    shot = tmp_path / "shot.png"
    run_ = browse(tiny_html, tmp_path, f"--screenshot={shot}", f"--window-size={width},2000")
    assert shot.exists(), run_.stderr
    data = shot.read_bytes()
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (width, 2000)
    assert len(data) > 20_000


# -- LeNet: 576 uses, folded ---------------------------------------------------------------------------


def lenet_net() -> dict:
    """LeNet's random inputs and seeded weights, as derive draws them: the spec's data, not derive's results."""
    import numpy as np

    from derive.app.api import Model

    model = Model.load("lenet")
    spec = model.spec
    p = model.parameter_values()
    x = np.reshape(spec.layers[0].values, (1, 28, 28)).tolist()

    def kernel(l: int, out: int, inp: int) -> list:
        return [
            [[[p[f"w{l}_{o}_{i}_{r}_{c}"] for c in range(1, 6)] for r in range(1, 6)] for i in range(1, inp + 1)]
            for o in range(1, out + 1)
        ]

    return {
        "shape": [1, 28, 28],
        "X": [x],
        "T": [list(spec.layers[-1].targets)],
        "loss": "cross_entropy",
        "reduction": "sum",
        "layers": [
            {"kind": "conv2d", "W": kernel(2, 6, 1), "b": [p[f"b2_{o}"] for o in range(1, 7)], "activation": "relu"},
            {"kind": "maxpool2d", "kernel": 2, "stride": 2},
            {"kind": "conv2d", "W": kernel(4, 16, 6), "b": [p[f"b4_{o}"] for o in range(1, 17)], "activation": "relu"},
            {"kind": "maxpool2d", "kernel": 2, "stride": 2},
            {
                "kind": "dense",
                "W": [[p[f"w6_{j}_{k}"] for k in range(1, 257)] for j in range(1, 11)],
                "b": [p[f"b6_{j}"] for j in range(1, 11)],
                "activation": "softmax",
            },
        ],
    }


def test_the_lenet_lecture_builds_and_folds_576_uses(tmp_path):
    need_tex()
    torch = require_torch()
    text = text_of(build(tmp_path, "lenet", ".pdf"))
    one = flat(text)
    match = re.search(r"The gradient of the kernel weight w(?:2)?(\d+),1,(\d),(\d)", one)
    assert match, "no kernel weight followed"
    w = "w2_{}_1_{}_{}".format(*match.groups())
    want = compute(torch, lenet_net())
    assert f"sum over these {24 * 24} uses" in one
    assert "folded" in one
    assert re.search(f"∂E/∂{typeset(w)} = {re.escape(g8(want['grads'][w]))}", one)
    o = int(w.split("_")[1]) - 1
    deltas = want["delta"][0][0][o * 576 : (o + 1) * 576]
    nonzero = sum(d != 0 for d in deltas)
    assert f"{nonzero} of the 576 entries of map {o + 1}" in one
    # large maps are cropped, and the page says so
    assert "of the 24×24 map are shown" in one and "of the 28×28 map are shown" in one
    assert g8(want["grads"][f"b2_{o + 1}"]) in one


# -- exercises: from the same plan, graded by derive check ------------------------------------------------


def oracle_value(want: dict, name: str) -> float:
    """A claim's value from torch's numbers: dE/dX, a3_c_r_k, delta_z2_c_r_k or the older delta_2_c_r_k (maps
    2×3×3 and 2×2×2)."""
    if name.startswith("dE/d"):
        return want["grads"][name[4:]]
    layer, *index = name.removeprefix("delta_").lstrip("az").split("_")
    c, r, k = (int(i) - 1 for i in index)
    side = 3 if layer == "2" else 2
    flat_index = c * side * side + r * side + k
    if name.startswith("delta_"):
        return want["delta"][int(layer) - 2][0][flat_index]
    return want["a"][int(layer) - 2][0][flat_index]


def claims_of(path: Path) -> dict[str, float]:
    lines = [line.split("=") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return {name.strip(): float(value) for name, value in lines}


def test_the_lectures_exercises_have_torchs_answers(torch_tiny):
    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Exercises

    plan = build_plan(Model.load("tinyconv"), Options(exercises=True))
    (block,) = plan.section("exercises").blocks
    assert isinstance(block, Exercises)
    claims = [c for item in block.items for c in item.claims]
    kinds = {c.name.split("/")[-1][:2] if "/" in c.name else c.name[:2] for c in claims}
    assert kinds == {"dw", "db", "a3", "de"}  # a kernel weight, a bias, a pooled value, a δ-map entry
    for claim in claims:
        assert claim.value == pytest.approx(oracle_value(torch_tiny, claim.name), rel=1e-12, abs=1e-15), claim.name


def test_student_variants_are_graded_by_check(tmp_path):
    torch = require_torch()
    folder = tmp_path / "class"
    folder.mkdir()
    result = run("exercises", "tinyconv", "--students", "3", "--seed", "1", "-o", str(folder), "--format", "html")
    assert result.exit_code == 0, result.output
    for k in ("01", "02", "03"):
        spec_path = folder / f"student-{k}.toml"
        answers = folder / f"student-{k}-answers.txt"
        want = compute(torch, oracle_net(tomllib.loads(spec_path.read_text())))
        claims = claims_of(answers)
        assert len(claims) == 4
        for name, value in claims.items():
            assert value == pytest.approx(oracle_value(want, name), rel=1e-9, abs=1e-12), (k, name)
        ok = run("check", str(spec_path), "--claims", str(answers))
        assert ok.exit_code == 0, ok.output
        name, value = next((n, v) for n, v in claims.items() if n.startswith("dE/dw"))
        wrong = tmp_path / f"wrong-{k}.txt"
        wrong.write_text(f"{name} = {value + 0.01:.6g}\n")
        refused = run("check", str(spec_path), "--claims", str(wrong))
        assert refused.exit_code == 1 and "wrong" in refused.output
    key = (folder / "student-01-key.html").read_text()
    assert "<table" in key and "derive check student-01.toml" in key


def test_lenet_exercises_are_refused_in_one_line(tmp_path):
    result = run("exercises", "lenet", "--students", "2", "--seed", "1", "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "worked by hand" in result.output.splitlines()[0]


def test_a_batch_works_one_sample_and_steps_with_the_batch(tmp_path):
    """A batch's lecture works one sample through; its update is torch's step on the whole batch, and the
    exercises' claims name the sample ([k]) so that derive check accepts them on the batch's spec."""
    torch = require_torch()
    from conv_oracle import toml
    from test_conv import NETS

    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Exercises

    net = NETS["conv2d-pad-maxpool-batch"]
    path = tmp_path / "batch.toml"
    path.write_text(toml(net))
    page = build(tmp_path, str(path), ".html").read_text()
    assert "samples" in page and "whole batch" in page
    after = train(torch, net, 1, net.get("rate", 0.1))
    plan = build_plan(Model.load(path), Options(exercises=True))
    (field,) = [f for _, f in plan.section("kernel_weight").title.fields]
    w = field.expr.name  # the weight the lecture follows (its choice; the numbers are torch's)
    assert f"<mn>{g8(after[w])}</mn>" in page
    (block,) = plan.section("exercises").blocks
    assert isinstance(block, Exercises)
    claims = [f"{c.name}={c.value:.12g}" for item in block.items for c in item.claims]
    assert claims and all("[" in c for c in claims)
    checked = run("check", str(path), *claims)
    assert checked.exit_code == 0, checked.output


def test_a_shared_bias_sums_every_map(tmp_path):
    """One bias for both maps (bias = 0.05): its gradient, in the lecture and its exercise, is torch's."""
    torch = require_torch()
    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Exercises

    text = (EXAMPLES / "tinyconv.toml").read_text().replace("bias = [0.1, -0.1]", "bias = 0.05")
    path = tmp_path / "shared.toml"
    path.write_text(text)
    want = compute(torch, oracle_net(tomllib.loads(text)))
    plan = build_plan(Model.load(path), Options(exercises=True))
    (block,) = plan.section("exercises").blocks
    assert isinstance(block, Exercises)
    claims = {c.name: c.value for item in block.items for c in item.claims}
    assert claims["dE/db2"] == pytest.approx(want["grads"]["b2"], rel=1e-12)
    page = build(tmp_path, str(path), ".html").read_text()
    assert f"<mn>{g8(want['grads']['b2'])}</mn>" in page
    assert "every map of layer 2" in page


def test_lenet_lecture_exercises_are_refused_in_one_line(tmp_path):
    result = run("lecture", "lenet", "--exercises", "-o", str(tmp_path / "x.pdf"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "worked by hand" in result.output.splitlines()[0]


def test_the_pictures_mark_torchs_uses_and_winners(torch_tiny):
    """The coloured cells: the inputs the followed weight multiplies (red where torch's δ there is not 0) and
    each max pool window's winner (torch's max_pool2d indices)."""
    torch = require_torch()
    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import MARK_STRONG, MARK_USE, MARK_WIN, Grid

    plan = build_plan(Model.load("tinyconv"), Options())
    w = torch_tiny["weight"]
    _, _, _, er, ec = (int(i) - 1 for i in w[1:].split("_"))
    c = torch_tiny["channel"]
    deltas = torch_tiny["delta"][0][0][c * 9 : (c + 1) * 9]
    want = [[0] * 4 for _ in range(4)]
    for r in range(3):
        for k in range(3):
            want[r + er][k + ec] = MARK_STRONG if deltas[r * 3 + k] != 0 else MARK_USE
    grids = [b for b in plan.section("uses").blocks if isinstance(b, Grid) and b.numbers]
    (panel,) = grids[0].panels
    assert [list(row) for row in panel.marks] == want
    # the winners: torch's max_pool2d over layer 2's outputs, 2×2 windows with stride 1
    a = torch.tensor(torch_tiny["a"][0][0], dtype=torch.float64).reshape(1, 2, 3, 3)
    _, indices = torch.nn.functional.max_pool2d(a, 2, stride=1, return_indices=True)
    pooled = next(
        b
        for b in plan.section("forward").blocks
        if isinstance(b, Grid) and any(m == MARK_WIN for p in b.panels for row in p.marks for m in row)
    )
    for channel in range(2):
        winners = {int(i) for i in indices[0, channel].flatten()}
        marks = pooled.panels[2 * channel].marks
        assert {r * 3 + k for r in range(3) for k in range(3) if marks[r][k] == MARK_WIN} == winners
