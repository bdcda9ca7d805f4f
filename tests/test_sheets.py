"""`derive exercises`: each student's questions answered right (by the oracle), sheets without answers,
keys with them, answers gradable by `derive check`, the whole class set in one command."""

import html
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import need_tex
from oracles import backprop, forward, mazur, train
from test_html import HOSTILE, Page, browse, external_references, hostile_spec
from test_variants import oracle_net

from derive.app.api import Model
from derive.app.cli import main
from derive.check.claims import check, read_claims
from derive.lecture import texbuild
from derive.sheets.classes import answers_text, build_class, sheet_tex, write_class
from derive.spec.reading import load_spec


def text_of(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def mazur_class():
    return build_class("mazur", 4, seed=21, load=Model)


def oracle_answers(variant_toml):
    """The six answers of a Mazur variant, from the oracle's NumPy loop."""
    net = oracle_net(variant_toml)
    e, grad, inner = backprop(net)
    once, _ = train(net, 1)
    return {
        "out_o2": inner["a"][2][1],
        "E": e,
        "dE/dw8": grad[8],  # w1 w2 w3 w4 b1 w5 w6 w7 w8 b2
        "delta_h2": inner["delta"][1][1],
        "dE/dw1": grad[0],
        "w1'": once.weights[0][0, 0],
    }


def test_every_students_answers_are_the_oracles(mazur_class):
    for sheet in mazur_class.sheets:
        expected = oracle_answers(sheet.variant.toml)
        got = {c.name: c.value for c in sheet.claims}
        assert list(got) == list(expected)
        for name, value in expected.items():
            assert abs(got[name] - value) <= 1e-12 * max(1.0, abs(value)), name


def test_students_get_different_numbers_and_different_answers(mazur_class):
    answers = [tuple(round(c.value, 9) for c in s.claims) for s in mazur_class.sheets]
    assert len(set(answers)) == len(answers)


def test_the_answers_file_is_a_claims_file_that_derive_check_accepts(mazur_class):
    sheet = mazur_class.sheets[2]
    claims = read_claims(answers_text(sheet), "answers.txt")
    report = check(sheet.model, claims)
    assert report.wrong == 0 and len(report.results) == len(sheet.claims) == 6
    expected = oracle_answers(sheet.variant.toml)
    for claim in claims:
        assert abs(float(claim.value) - expected[claim.name]) <= 1e-9 * abs(expected[claim.name])


def test_the_sheet_asks_without_answering_and_the_key_answers_with_the_working(mazur_class):
    sheet = mazur_class.sheets[0]
    questions_tex = sheet_tex(sheet, key=False)
    key_tex = sheet_tex(sheet, key=True)
    for c in sheet.claims:
        shown = f"{c.value:.8g}"
        assert shown not in questions_tex
        assert shown in key_tex
        assert re.sub(r"_", r"\\_", c.name) + " =" in questions_tex  # the line the student fills in
    assert "$0.5$" in questions_tex  # the learning rate is given
    for x in sheet.variant.inputs + sheet.variant.targets:
        assert f"${x:g}$" in questions_tex
    # the definitions and the loss, then the working of each question but the update (worked in one sentence)
    assert questions_tex.count(r"\begin{align*}") == 2
    assert key_tex.count(r"\begin{align*}") == 2 + len(sheet.claims) - 1


@pytest.mark.parametrize("example", ["chain_221", "softmax", "nielsen_tanh", "swish"])
def test_every_examples_answers_are_gradable(example):
    for sheet in build_class(example, 2, seed=3, weights=True, load=Model).sheets:
        report = check(sheet.model, read_claims(answers_text(sheet), "a.txt"))
        assert report.wrong == 0


def test_a_network_without_hidden_layers_has_no_hidden_delta_question(tmp_path):
    spec = tmp_path / "single.toml"
    spec.write_text(
        '[loss]\nkind = "half_sse"\n[[layers]]\nsize = 2\nvalues = [0.5, 0.5]\n'
        '[[layers]]\nsize = 1\nactivation = "sigmoid"\nweights = [[0.3, 0.4]]\nbias = 0.1\ntargets = [0.5]\n',
        encoding="utf-8",
    )
    (sheet,) = build_class(spec, 1, seed=3, load=Model).sheets
    assert [c.name for c in sheet.claims] == ["a2_1", "E", "dE/dw2_1_2", "dE/dw2_1_1", "w2_1_1'"]
    assert check(sheet.model, read_claims(answers_text(sheet), "a.txt")).wrong == 0


def test_the_english_sheet_and_key_compile_and_read_right(tmp_path, mazur_class):
    need_tex()
    sheet = mazur_class.sheets[1]
    texbuild.compile_pdf(sheet_tex(sheet, key=False), tmp_path / "sheet.pdf", "en")
    texbuild.compile_pdf(sheet_tex(sheet, key=True), tmp_path / "key.pdf", "en")
    questions, key = text_of(tmp_path / "sheet.pdf"), text_of(tmp_path / "key.pdf")
    assert "Exercise sheet" in questions and "Student 02" in questions
    assert "dE/dw8 =" in questions
    assert f"{sheet.claims[2].value:.8g}" in key.replace("−", "-")
    assert "derive check student-02.toml --claims" in key  # two hyphens, not a dash


def test_the_chinese_sheet_compiles(tmp_path, mazur_class):
    need_tex("zh")
    texbuild.compile_pdf(sheet_tex(mazur_class.sheets[0], key=False, lang="zh"), tmp_path / "s.pdf", "zh")
    text = text_of(tmp_path / "s.pdf")
    assert "练习" in text and "学生 01" in text and "变式 01" in text and "已知数值" in text


def test_a_class_set_in_one_command(tmp_path):
    need_tex()
    out = tmp_path / "class"
    result = CliRunner().invoke(main, ["exercises", "mazur", "--students", "3", "--seed", "5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    listing = tomllib.loads((out / "variants.toml").read_text(encoding="utf-8"))
    assert listing["students"] == 3 and listing["seed"] == 5
    assert listing["questions"] == ["out_o2", "E", "dE/dw8", "delta_h2", "dE/dw1", "w1'"]
    for entry in listing["variants"]:
        spec = load_spec(out / entry["spec"])
        assert list(spec.layers[0].values) == entry["inputs"]
        for role in ("sheet", "key", "answers"):
            assert (out / entry[role]).is_file()
        graded = CliRunner().invoke(main, ["check", str(out / entry["spec"]), "--claims", str(out / entry["answers"])])
        assert graded.exit_code == 0, graded.output
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # the staging folder is gone


def test_the_same_seed_writes_the_same_specs(tmp_path):
    first = build_class("mazur", 3, seed=8, load=Model)
    again = build_class("mazur", 3, seed=8, load=Model)
    assert [s.variant.toml for s in first.sheets] == [s.variant.toml for s in again.sheets]
    assert [answers_text(s) for s in first.sheets] == [answers_text(s) for s in again.sheets]


def test_a_failed_build_leaves_no_half_written_class(tmp_path, monkeypatch, mazur_class):
    need_tex()
    calls = []

    def failing(source, target, lang, keep_tex=None):
        calls.append(target)
        if len(calls) == 3:
            raise texbuild.TexFailed("the LaTeX build failed")
        target.write_bytes(b"%PDF")

    monkeypatch.setattr(texbuild, "compile_pdf", failing)
    with pytest.raises(texbuild.TexFailed):
        write_class(mazur_class, tmp_path / "class", jobs=1)
    assert not list((tmp_path / "class").glob("student-*"))
    assert not (tmp_path / "class" / "variants.toml").exists()


# -- HTML sheets and keys ------------------------------------------------------------------


def g8(value: float) -> str:
    return f"{abs(value):.8g}"  # a negative number is <mo>−</mo><mn>…</mn> in MathML


@pytest.fixture(scope="module")
def html_class(tmp_path_factory):
    """Three students' web pages, built with no TeX on the PATH at all."""
    out = tmp_path_factory.mktemp("html") / "class"
    env = {**os.environ, "PATH": str(out.parent)}
    args = ["exercises", "mazur", "--students", "3", "--seed", "5", "-o", str(out), "--format", "html"]
    run = subprocess.run([sys.executable, "-m", "derive", *args], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return out


def test_html_sheets_and_keys_in_one_command_without_tex(html_class):
    listing = tomllib.loads((html_class / "variants.toml").read_text(encoding="utf-8"))
    for entry in listing["variants"]:
        assert entry["sheet"].endswith("-sheet.html") and entry["key"].endswith("-key.html")
        expected = oracle_answers((html_class / entry["spec"]).read_text(encoding="utf-8"))
        sheet = (html_class / entry["sheet"]).read_text(encoding="utf-8")
        key = (html_class / entry["key"]).read_text(encoding="utf-8")
        for page in (sheet, key):
            parsed = Page(page)
            assert page.startswith("<!DOCTYPE html>") and external_references(parsed) == []
            for tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
                assert parsed.count(tag) == 0, tag
            assert "{{" not in page
        for name, value in expected.items():
            assert f"<mn>{g8(value)}</mn>" in key, name  # worked in the key
            assert g8(value) not in sheet, name  # never on the sheet
            assert f"<code>{html.escape(name)} =</code>" in sheet  # the line the student fills in
        graded = CliRunner().invoke(
            main, ["check", str(html_class / entry["spec"]), "--claims", str(html_class / entry["answers"])]
        )
        assert graded.exit_code == 0, graded.output
    assert not [p for p in html_class.iterdir() if p.suffix == ".pdf" or p.name.startswith(".")]


def test_html_sheets_give_the_numbers_and_nothing_derived(html_class):
    (entry, *_) = tomllib.loads((html_class / "variants.toml").read_text(encoding="utf-8"))["variants"]
    sheet = (html_class / entry["sheet"]).read_text(encoding="utf-8")
    for x in entry["inputs"] + entry["targets"] + [0.5]:  # the inputs, the targets, η
        assert f"<mn>{x:g}</mn>" in sheet
    net = oracle_net((html_class / entry["spec"]).read_text(encoding="utf-8"))
    zs, outs = forward(net)
    for value in [*zs[1].ravel(), *outs[1].ravel(), *outs[2].ravel()]:
        assert g8(value) not in sheet  # no net input or output of the forward pass


def test_html_builds_are_reproducible(tmp_path):
    pages = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["exercises", "mazur", "--students", "1", "--seed", "5", "-o", str(out), "--format", "html"]
        assert CliRunner().invoke(main, args).exit_code == 0
        pages.append([(out / f).read_bytes() for f in ("student-01-sheet.html", "student-01-key.html")])
    assert pages[0] == pages[1]


def test_html_sheets_escape_the_specs_text(tmp_path):
    out = tmp_path / "class"
    args = [
        "exercises",
        str(hostile_spec(tmp_path)),
        "--students",
        "1",
        "--seed",
        "2",
        "-o",
        str(out),
        "--format",
        "html",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    for name in ("student-01-sheet.html", "student-01-key.html"):
        page = Page((out / name).read_text(encoding="utf-8"))
        assert page.count("script") == 0 and page.count("img") == 0
        assert all("onerror" not in attrs for _, attrs in page.tags)
        assert HOSTILE in "".join(page.text)  # shown as text, in the variant's title


def test_in_the_browser_the_sheet_and_the_key_render(html_class, tmp_path):
    listing = tomllib.loads((html_class / "variants.toml").read_text(encoding="utf-8"))
    entry = listing["variants"][1]
    expected = oracle_answers((html_class / entry["spec"]).read_text(encoding="utf-8"))
    sheet, key = html_class / entry["sheet"], html_class / entry["key"]
    sheet_dom, key_dom = browse(sheet, tmp_path, "--dump-dom").stdout, browse(key, tmp_path, "--dump-dom").stdout
    assert Page(sheet_dom).count("math") == Page(sheet.read_text()).count("math") > 20
    assert Page(key_dom).count("math") == Page(key.read_text()).count("math") > 60
    assert Page(key_dom).count("mfrac") > 10
    for name, value in expected.items():
        assert f"<mn>{g8(value)}</mn>" in key_dom, name
        assert g8(value) not in sheet_dom, name
    assert sheet_dom.count('class="blank"') == len(expected)  # a line to fill in for each answer
    shot = tmp_path / "sheet.png"
    browse(sheet, tmp_path, f"--screenshot={shot}", "--window-size=1000,2000")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(shot.read_bytes()) > 30_000


def test_a_lectures_exercises_ask_nothing_the_update_table_answers():
    """Issue 22: "one update of w5" was answered by the lecture's own update table; a sheet is what is graded."""
    from derive.app.api import Model
    from derive.lecture import Options, build_plan
    from derive.lecture.plan import Num

    plan = build_plan(Model.load("mazur"), Options(exercises=True))
    (exercises,) = [b for b in plan.section("exercises").blocks if type(b).__name__ == "Exercises"]
    assert [c for item in exercises.items for c in item.claims] == []
    stepped, _ = train(mazur(), 1)
    answers = [
        value.value
        for item in exercises.items
        for block in item.answer
        for sentence in getattr(block, "sentences", ())
        for _, value in sentence.fields
        if isinstance(value, Num)
    ]
    assert answers and all(abs(v - stepped.flat()[5]) > 1e-9 for v in answers)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--students", "0", "--seed", "1"], "0 is not in the range"),
        (["--seed", "1"], "Missing option '--students'"),
        (["--students", "2"], "Missing option '--seed'"),
    ],
)
def test_bad_arguments_exit_2(args, message):
    result = CliRunner().invoke(main, ["exercises", "mazur", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_inputs_of_every_sheet_keep_the_activations_reasonable(mazur_class):
    for sheet in mazur_class.sheets:
        zs, _ = forward(oracle_net(sheet.variant.toml))
        assert all(np.all((np.abs(z) >= 0.05) & (np.abs(z) <= 3.0)) for z in zs[1:])


def test_a_network_too_wide_to_work_by_hand_is_refused(tmp_path):
    spec = tmp_path / "wide.toml"
    spec.write_text(
        '[loss]\nkind = "half_sse"\n[[layers]]\nsize = 20\n[[layers]]\nsize = 2\nactivation = "sigmoid"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["exercises", str(spec), "--students", "2", "--seed", "1"])
    assert result.exit_code == 2
    assert "at most 8 neurons a layer" in result.output


def test_with_lectures_each_student_also_gets_their_variants_whole_lecture(tmp_path):
    need_tex()
    out = tmp_path / "class"
    args = ["exercises", "mazur", "--students", "1", "--seed", "5", "-o", str(out), "--lectures"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (entry,) = tomllib.loads((out / "variants.toml").read_text(encoding="utf-8"))["variants"]
    text = text_of(out / entry["lecture"])
    assert "Exercises" in text and "Answers" in text
    loss = oracle_answers((out / entry["spec"]).read_text(encoding="utf-8"))["E"]
    assert f"{loss:.8g}" in text  # the variant's loss, worked in its own lecture
