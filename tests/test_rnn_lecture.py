"""The recurrent lecture (backpropagation through time) in PDF and HTML, English and Chinese, and its exercises.

Every number the lecture shows is compared with a plain NumPy BPTT written here (it reads the spec's TOML with
tomllib and never imports derive), itself checked against PyTorch autograd (tests/rnn_oracle.py): the states,
the δ table, ‖δ_t‖, ∂E/∂u and each step's part of it, and the same network with U scaled up.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import need_tex, require_torch
from test_html import Page, browse, external_references

from derive.spec.reading import builtin_example_text

SCALE = 2.0  # the lecture compares with U × 2 for the built-in example (the first scale whose δ grows back)


# -- the independent computation ---------------------------------------------------------


def bptt(data: dict, scale: float = 1.0) -> dict:
    """Forward and backward through time for a spec's TOML table: tanh/sigmoid rnn, dense sigmoid, half_sse."""
    layers = data["layers"]
    x = np.array(layers[0]["values"], dtype=float)  # T × D
    rnn, out = layers[1], layers[2]
    assert rnn["activation"] == "tanh" and out["activation"] == "sigmoid" and data["loss"]["kind"] == "half_sse"
    W = np.array(rnn["weights"], dtype=float)
    U = np.array(rnn["recurrent_weights"], dtype=float) * scale
    b = np.array(rnn["bias"], dtype=float)
    V = np.array(out["weights"], dtype=float)
    c = np.broadcast_to(np.array(out["bias"], dtype=float), (V.shape[0],))
    y = np.array(out["targets"], dtype=float)
    T, H = x.shape[0], W.shape[0]
    z, h = np.zeros((T, H)), np.zeros((T + 1, H))  # h[0] = h_0 = 0; h[t + 1] is the state after step t + 1
    for t in range(T):
        z[t] = W @ x[t] + U @ h[t] + b
        h[t + 1] = np.tanh(z[t])
    zo = V @ h[T] + c
    o = 1 / (1 + np.exp(-zo))
    E = float(np.sum((y - o) ** 2) / 2)
    delta_o = (o - y) * o * (1 - o)
    delta = np.zeros((T, H))
    for t in reversed(range(T)):
        back = V.T @ delta_o if t == T - 1 else U.T @ delta[t + 1]
        delta[t] = (1 - h[t + 1] ** 2) * back
    grad_U = sum(np.outer(delta[t], h[t]) for t in range(T))
    parts_u11 = [delta[t, 0] * h[t, 0] for t in range(1, T)]  # u_11's part at steps 2 … T
    parts_w11 = [delta[t, 0] * x[t, 0] for t in range(T)]
    grad_W = sum(np.outer(delta[t], x[t]) for t in range(T))
    return {
        "z": z,
        "h": h[1:],
        "o": o,
        "E": E,
        "delta_o": delta_o,
        "delta": delta,
        "norms": np.sqrt(np.sum(delta**2, axis=1)),
        "dU": grad_U,
        "dW": grad_W,
        "db": delta.sum(axis=0),
        "parts_u11": parts_u11,
        "parts_w11": parts_w11,
        "rate": data["training"]["learning_rate"],
        "U": U,
    }


EXAMPLE = tomllib.loads(builtin_example_text("rnn"))
WANT = bptt(EXAMPLE)


def test_the_numpy_oracle_agrees_with_torch():
    """The test's own BPTT is checked once against PyTorch autograd (tests/rnn_oracle.py)."""
    torch = require_torch()
    from rnn_oracle import compute

    rnn, out = EXAMPLE["layers"][1], EXAMPLE["layers"][2]
    net = {
        "X": [EXAMPLE["layers"][0]["values"]],
        "T": [out["targets"]],
        "loss": "half_sse",
        "reduction": "mean",
        "rnn": {"W": rnn["weights"], "U": rnn["recurrent_weights"], "b": rnn["bias"], "activation": "tanh"},
        "out": {"W": out["weights"], "b": [out["bias"]], "activation": "sigmoid"},
    }
    torch_numbers = compute(torch, net)
    assert np.allclose(torch_numbers["deltas"][0], WANT["delta"], rtol=1e-12, atol=0)
    assert np.allclose(torch_numbers["states"][0], WANT["h"], rtol=1e-12, atol=0)
    assert abs(torch_numbers["grads"]["u2_1_1"] - WANT["dU"][0, 0]) < 1e-15
    assert abs(torch_numbers["E"] - WANT["E"]) < 1e-15


# -- helpers ------------------------------------------------------------------------------


def derive_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def g8(value: float) -> str:
    """A number as the lecture prints it: 8 significant digits, a plain minus."""
    return f"{value:.8g}"


def plain(text: str) -> str:
    """Extracted text with the typographic minus as '-' and no line-break hyphenation surprises."""
    return text.replace("\u2212", "-")


def lecture_pdf(tmp_path: Path, lang: str, *extra: str) -> str:
    need_tex(lang)
    pdf = tmp_path / f"rnn-{lang}.pdf"
    run = derive_cli("lecture", "rnn", "--lang", lang, "-o", str(pdf), *extra)
    assert run.returncode == 0, run.stderr
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return plain(text)


def tokens(text: str) -> set[str]:
    """Every number written in the text."""
    return set(re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", text))


def shown_numbers(want: dict) -> dict[str, float]:
    """What the lecture must show, by name: states, nets, δs, ‖δ_t‖, ∂E/∂u_11 and its parts, E, the update."""
    T, H = want["h"].shape
    numbers = {"E": want["E"], "dE/du11": want["dU"][0, 0], "dE/dw11": want["dW"][0, 0], "dE/db1": want["db"][0]}
    numbers["u11'"] = 0.5 - want["rate"] * want["dU"][0, 0]
    numbers["delta_o"] = float(want["delta_o"][0])
    for t in range(T):
        numbers[f"norm t{t + 1}"] = want["norms"][t]
        for j in range(H):
            numbers[f"h{j + 1} t{t + 1}"] = want["h"][t, j]
            numbers[f"z{j + 1} t{t + 1}"] = want["z"][t, j]
            numbers[f"delta{j + 1} t{t + 1}"] = want["delta"][t, j]
    for t, part in enumerate(want["parts_u11"], start=2):
        numbers[f"u11 part t{t}"] = part
    return numbers


def assert_shown(text: str, numbers: dict[str, float]) -> None:
    found = tokens(text)
    missing = {name: g8(v) for name, v in numbers.items() if g8(v) not in found}
    assert not missing, missing


# -- the PDF --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def english_pdf(tmp_path_factory) -> str:
    return lecture_pdf(tmp_path_factory.mktemp("en"), "en", "--exercises")


def test_the_pdf_shows_every_state_delta_norm_and_part_as_numpy_computes_them(english_pdf):
    assert_shown(english_pdf, shown_numbers(WANT))


def test_the_pdf_has_each_section_a_student_needs(english_pdf):
    for heading in (
        "The network",
        "The forward pass",
        "The loss",
        "The network unrolled in time",
        "Backwards through time",
        "a sum over the steps",
        "An input weight and a bias",
        "Vanishing and exploding gradients",
        "One step of gradient descent",
        "Exercises",
        "Answers",
    ):
        assert heading in english_pdf, heading
    # the recurrent weight's name is explained before any formula uses it
    assert english_pdf.index("recurrent weight into unit 1 from state 1") < english_pdf.index("Backwards through")


def test_the_size_of_delta_is_compared_with_u_scaled_up(english_pdf):
    """‖δ_t‖ of this network shrinks back in time; with U × 2 it grows: both columns as NumPy computes them."""
    scaled = bptt(EXAMPLE, SCALE)
    assert WANT["norms"][0] < WANT["norms"][-1] and scaled["norms"][0] > scaled["norms"][-1]
    found = tokens(english_pdf)
    for t in range(len(scaled["norms"])):
        assert g8(scaled["norms"][t]) in found, t
        assert f"{WANT['norms'][t] / WANT['norms'][-1]:.4g}" in found, t
    ratio = f"{WANT['norms'][0] / WANT['norms'][-1]:.3g}"
    assert f"is {ratio} times" in " ".join(english_pdf.split())


def test_the_chinese_pdf_builds_with_the_same_numbers(tmp_path):
    text = lecture_pdf(tmp_path, "zh")
    assert "按时间展开的网络" in text and "梯度消失与梯度爆炸" in text
    numbers = shown_numbers(WANT)
    assert_shown(text, {k: v for k, v in numbers.items() if k.startswith(("delta", "norm", "u11 part", "dE/du"))})


# -- the web page, in a browser --------------------------------------------------------------


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    path = folder / "rnn.html"
    run = derive_cli("lecture", "rnn", "--exercises", "--format", "html", "-o", str(path))
    assert run.returncode == 0, run.stderr
    return path


def test_the_browser_shows_the_numbers_and_the_highlighted_uses(page, tmp_path):
    source = page.read_text(encoding="utf-8")
    written = Page(source)
    assert external_references(written) == [] and written.count("script") == 0
    assert "{{" not in source
    dom = browse(page, tmp_path, "--dump-dom").stdout
    rendered = Page(dom)
    assert rendered.count("math") == written.count("math") > 100
    assert rendered.count("svg") >= 1
    text = plain(re.sub(r"<[^>]+>", " ", dom))
    text = re.sub(r"-\s+(?=\d)", "-", text)  # MathML sets a sign as an operator of its own: <mo>−</mo><mn>0.1</mn>
    assert_shown(text, shown_numbers(WANT))
    # the unrolled graph: every use of u_11 (steps 1→2, 2→3, 3→4) drawn thick in the highlight colour
    svg = re.search(r"<svg.*?</svg>", dom, re.S)
    assert svg is not None
    thick = re.findall(r'<line [^>]*stroke-width="3"', svg.group(0))
    assert len(thick) == len(WANT["parts_u11"]) == 3


@pytest.mark.parametrize("width", [1200, 390])
def test_screenshots_of_the_page(page, tmp_path, width):
    shot = tmp_path / "shot.png"
    run = browse(page, tmp_path, f"--screenshot={shot}", f"--window-size={width},2000")
    assert shot.exists(), run.stderr
    data = shot.read_bytes()
    assert int.from_bytes(data[16:20], "big") == width
    assert len(data) > 30_000  # text and a drawing, not a blank page


def test_the_chinese_page_fills_every_sentence():
    from derive.app.api import Model
    from derive.lecture import Options, html_source

    source = html_source(Model.load("rnn"), Options(lang="zh", exercises=True))
    assert "{{" not in source and "按时间展开的网络" in source
    assert g8(WANT["dU"][0, 0]) in plain(source)


# -- the plan ---------------------------------------------------------------------------------


def test_the_plan_has_the_sections_and_the_exercises_claims_are_right():
    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Diagram, Exercises

    plan = build_plan(Model.load("rnn"), Options(exercises=True))
    keys = [s.key for s in plan.sections]
    assert keys == [
        "network",
        "forward",
        "loss",
        "unrolled",
        "deltas",
        "recurrent",
        "input",
        "vanishing",
        "update",
        "exercises",
    ]
    (diagram,) = [b for b in plan.section("unrolled").blocks if isinstance(b, Diagram)]
    assert sum(e.colour is not None for e in diagram.edges) == 3
    (exercises,) = [b for b in plan.section("exercises").blocks if isinstance(b, Exercises)]
    claims = {c.name: c.value for e in exercises.items for c in e.claims}
    T = len(WANT["norms"])
    assert claims == pytest.approx(
        {
            "a2_1_t2": WANT["h"][1, 0],
            f"delta_z2_1_t{T - 1}": WANT["delta"][T - 2, 0],
            f"delta_z2_1_t{T}": WANT["delta"][T - 1, 0],
            "dE/du2_1_1": WANT["dU"][0, 0],
            "u2_1_1'": 0.5 - WANT["rate"] * WANT["dU"][0, 0],
        },
        rel=1e-12,
    )


# -- exercises for a class, graded by derive check -----------------------------------------------


def test_each_students_variant_has_its_own_numbers_and_check_grades_them(tmp_path):
    folder = tmp_path / "class"
    run = derive_cli("exercises", "rnn", "--students", "3", "--seed", "5", "-o", str(folder), "--format", "html")
    assert run.returncode == 0, run.stderr
    inputs = set()
    for label in ("01", "02", "03"):
        spec = folder / f"student-{label}.toml"
        data = tomllib.loads(spec.read_text(encoding="utf-8"))
        inputs.add(json.dumps(data["layers"][0]["values"]))
        want = bptt(data)
        answers = folder / f"student-{label}-answers.txt"
        lines = [line for line in answers.read_text().splitlines() if line and not line.startswith("#")]
        claims = {name.strip(): float(value) for name, value in (line.split("=") for line in lines)}
        T = len(want["norms"])
        u11 = data["layers"][1]["recurrent_weights"][0][0]
        independent = {
            "a2_1_t2": want["h"][1, 0],
            f"delta_z2_1_t{T - 1}": want["delta"][T - 2, 0],
            f"delta_z2_1_t{T}": want["delta"][T - 1, 0],
            "dE/du2_1_1": want["dU"][0, 0],
            "u2_1_1'": u11 - want["rate"] * want["dU"][0, 0],
        }
        assert claims == pytest.approx(independent, rel=1e-9)
        ok = derive_cli("check", str(spec), "--claims", str(answers))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"{len(claims)} ok, 0 wrong" in ok.stdout
        # every claim off in its third significant digit is marked wrong
        wrong = tmp_path / f"wrong-{label}.txt"
        wrong.write_text("".join(f"{name} = {value * 1.01:.10g}\n" for name, value in claims.items()))
        bad = derive_cli("check", str(spec), "--claims", str(wrong))
        assert bad.returncode == 1
        assert f"0 ok, {len(claims)} wrong" in bad.stdout
        sheet = (folder / f"student-{label}-sheet.html").read_text(encoding="utf-8")
        assert "{{" not in sheet and "recurrent" in sheet
    assert len(inputs) == 3  # each student gets their own sequence


def test_variants_with_drawn_weights_keep_u_apart_from_w():
    from derive.sheets.variants import NET_MAX, NET_MIN, draw_variants

    biases = set()
    for v in draw_variants("rnn", 3, seed=4, weights=True):
        data = tomllib.loads(v.toml)
        rnn = data["layers"][1]
        assert np.array(rnn["weights"]).shape == (2, 2) and np.array(rnn["recurrent_weights"]).shape == (2, 2)
        assert np.array(data["layers"][0]["values"]).shape == (4, 2)
        biases.add(tuple(rnn["bias"]))
        # the numbers written are the ones drawn and checked: every net of every step within the bounds
        want = bptt(data)
        nets = np.abs(np.concatenate([want["z"].ravel(), [np.log(want["o"][0] / (1 - want["o"][0]))]]))
        assert np.all((nets >= NET_MIN) & (nets <= NET_MAX)), nets
    assert len(biases) > 1  # the biases are drawn too


# -- bad input ---------------------------------------------------------------------------------


VALUES = re.compile(r"values = \[\[0\.5.*?\]\]\n", re.S)


def as_batch(text: str) -> str:
    """The example with two sequences (a batch)."""
    two = "values = [[[0.5, -0.2], [0.1, 0.4], [-0.3, 0.8], [0.7, 0.2]], [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]]]\n"
    return VALUES.sub(two, text).replace("targets = [1.0]", "targets = [[1.0], [0.0]]")


def without_numbers(text: str) -> str:
    return VALUES.sub("", text)


@pytest.mark.parametrize(
    ("change", "extra", "says"),
    [(as_batch, ("--exercises",), "one sample"), (without_numbers, (), "values")],
    ids=["exercises-of-a-batch", "no-numbers"],
)
def test_a_lecture_it_cannot_make_is_one_line_and_exit_2(tmp_path, change, extra, says):
    spec = tmp_path / "bad.toml"
    spec.write_text(change(builtin_example_text("rnn")), encoding="utf-8")
    run = derive_cli("lecture", str(spec), "--format", "tex", "-o", str(tmp_path / "bad.tex"), *extra)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert says in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.strip()]) <= 2  # the error, and its hint
    assert not (tmp_path / "bad.tex").exists()


def test_a_batch_works_one_sequence_and_combines_the_gradients():
    """The worked sequence's δs are its own loss's (∂E^[1]/∂z, torch's per-sample δs); the update is the batch's."""
    torch = require_torch()
    from rnn_oracle import compute

    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Num, Table
    from derive.spec.reading import parse_spec

    data = tomllib.loads(as_batch(builtin_example_text("rnn")))
    rnn, out = data["layers"][1], data["layers"][2]
    net = {
        "X": data["layers"][0]["values"],
        "T": out["targets"],
        "loss": "half_sse",
        "reduction": data["loss"].get("reduction", "mean"),
        "rnn": {"W": rnn["weights"], "U": rnn["recurrent_weights"], "b": rnn["bias"], "activation": "tanh"},
        "out": {"W": out["weights"], "b": [out["bias"]], "activation": "sigmoid"},
    }
    want = compute(torch, net)
    plan = build_plan(Model(parse_spec(as_batch(builtin_example_text("rnn")), "batch.toml")), Options())
    assert [s.key for s in plan.sections][:3] == ["network", "samples", "forward"]
    (table,) = [b for b in plan.section("deltas").blocks if isinstance(b, Table)]
    for row in table.rows:
        t = row[0].n - 1
        shown = [c.value for c in row[1:3]]
        assert shown == pytest.approx(want["deltas"][0][t], rel=1e-12)
    (combined,) = [b for b in plan.section("combination").blocks if isinstance(b, Table)]
    u_row = combined.rows[0]
    assert u_row[0].expr.name == "u2_1_1"
    assert isinstance(u_row[-1], Num) and u_row[-1].value == pytest.approx(want["grads"]["u2_1_1"], rel=1e-12)
    (update,) = [b for b in plan.section("update").blocks if isinstance(b, Table)]
    by_name = {row[0].expr.name: row for row in update.rows}
    assert by_name["u2_1_1"][2].value == pytest.approx(want["grads"]["u2_1_1"], rel=1e-12)


# -- other shapes and activations: the plan's δ table against torch --------------------------------


def single_sample_nets() -> dict[str, dict]:
    from test_rnn import NETS

    out = {}
    for name, net in NETS.items():
        one = dict(net, X=net["X"][:1], T=net["T"][:1], single=True)
        out[name] = one
    return out


@pytest.mark.parametrize("name", list(single_sample_nets()))
def test_the_delta_table_and_the_parts_of_u_equal_torchs_for_other_networks(name, tmp_path):
    """tanh, sigmoid and relu; T from 3 to 8, D from 1 to 3, H from 2 to 5; biases or none; softmax outputs."""
    torch = require_torch()
    from rnn_oracle import compute, toml

    from derive.app.api import Model
    from derive.lecture import Options, build_plan, html_source, tex_source
    from derive.lecture.plan import Diagram, Equations, Num, Table
    from derive.present.equations import Value
    from derive.spec.reading import parse_spec

    net = single_sample_nets()[name]
    want = compute(torch, net)
    model = Model(parse_spec(toml(net), f"{name}.toml"))
    plan = build_plan(model, Options(exercises=True))
    deltas = np.array(want["deltas"][0])  # T × H
    T, H = deltas.shape
    (table,) = [b for b in plan.section("deltas").blocks if isinstance(b, Table)]
    for row in table.rows:  # from the last step back: step, δ_1 … δ_H, ‖δ_t‖
        t = row[0].n - 1
        shown = [c.value for c in row[1:] if isinstance(c, Num)]
        assert np.allclose(shown[:H], deltas[t], rtol=1e-12, atol=1e-300), (t, shown)
        assert shown[H] == pytest.approx(np.linalg.norm(deltas[t]), rel=1e-12)
    # ∂E/∂u as the sum of its parts: each step's part δ_{j,t} · a_{k,t−1}, the total torch's gradient
    (sums,) = [b for b in plan.section("recurrent").blocks if isinstance(b, Equations)]
    values = [line.chain.sides[-1].value for line in sums.lines if isinstance(line.chain.sides[-1], Value)]
    u = plan.section("recurrent").title.fields[0][1].expr.name  # the chosen recurrent weight, u2_j_k
    j, k = (int(i) - 1 for i in u.split("_")[1:])
    states = np.array(want["states"][0])
    parts = [deltas[t, j] * states[t - 1, k] for t in range(1, T)]
    assert values[:-1] == pytest.approx(parts, rel=1e-12, abs=1e-300)
    assert values[-1] == pytest.approx(want["grads"][u], rel=1e-12)
    (diagram,) = [b for b in plan.section("unrolled").blocks if isinstance(b, Diagram)]
    assert 1 <= sum(e.colour is not None for e in diagram.edges) <= T - 1
    # both renderers take the plan, in both languages
    for lang in ("en", "zh"):
        assert "{{" not in html_source(model, Options(lang=lang, exercises=True))
        assert r"\section" in tex_source(model, Options(lang=lang))
