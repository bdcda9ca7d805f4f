"""The lecture as a web page: self-contained, safe, the oracle's numbers, read back by a real browser."""

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import IN_CI
from oracles import backprop, mazur, train

from derive.app.cli import main
from derive.spec.reading import builtin_example_text

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATES = Path(__file__).parent.parent / "templates"


def g8(value: float) -> str:
    return f"{value:.8g}"


def mazur_numbers():
    """The numbers the page must show, from the oracle (never from derive)."""
    e, grad, inner = backprop(mazur())
    stepped, _ = train(mazur(), 1)
    return {
        "out_o1": g8(inner["a"][2][0]),
        "E": g8(e),
        "dE/dw5": g8(grad[5]),
        "dE/dw1": g8(grad[0]),
        "new w5": g8(stepped.flat()[5]),
        "new w1": g8(stepped.flat()[0]),
    }


def lecture(tmp_path, spec, *args, name="lecture"):
    out = tmp_path / f"{name}.html"
    result = CliRunner().invoke(main, ["lecture", str(spec), "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out


class Page(HTMLParser):
    """Every tag with its attributes, the text, and the CSS: what a self-contained page may not fetch."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        (self.styles if self._in_style else self.text).append(data)

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


def external_references(page: Page) -> list[str]:
    found = []
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "data", "srcset", "poster", "action"):
            value = attrs.get(key)
            if value and not value.startswith("#"):
                found.append(f"<{tag} {key}={value}>")
        style = attrs.get("style") or ""
        found += [f"<{tag} style> url({u})" for u in re.findall(r"url\(([^)]*)\)", style) if not u.startswith("#")]
    for css in page.styles:
        found += [f"css url({u})" for u in re.findall(r"url\(([^)]*)\)", css)]
        found += [f"css @import {m}" for m in re.findall(r"@import[^;]*", css)]
    return found


@pytest.fixture(scope="module")
def mazur_html(tmp_path_factory):
    return lecture(tmp_path_factory.mktemp("html"), "mazur", "--exercises")


def test_o_html_alone_picks_the_web_page_and_it_needs_no_tex(tmp_path):
    # no TeX on the PATH at all: the web page is built anyway
    env = {**os.environ, "PATH": str(tmp_path)}
    out = tmp_path / "m.html"
    run = subprocess.run(
        [sys.executable, "-m", "derive", "lecture", "mazur", "-o", str(out)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == f"wrote {out}\n"
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_format_html_writes_to_the_output_folder_or_standard_output(tmp_path, monkeypatch):
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["lecture", "mazur", "--format", "html"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "output/mazur.html").read_text().startswith("<!DOCTYPE html>")
    result = runner.invoke(main, ["lecture", "mazur", "--format", "html", "-o", "-"])
    assert result.exit_code == 0 and result.output.startswith("<!DOCTYPE html>")


def test_format_and_suffix_must_agree(tmp_path):
    result = CliRunner().invoke(main, ["lecture", "mazur", "--format", "html", "-o", str(tmp_path / "x.pdf")])
    assert result.exit_code == 2 and "--format html does not match the suffix .pdf" in result.output
    result = CliRunner().invoke(main, ["lecture", "mazur", "-o", str(tmp_path / "x.html"), "--tex"])
    assert result.exit_code == 2 and "an HTML lecture has none" in result.output
    assert not (tmp_path / "x.html").exists()


def test_the_page_fetches_nothing(mazur_html):
    page = Page(mazur_html.read_text())
    assert external_references(page) == []
    for tag in ("script", "link", "img", "iframe", "object", "embed", "base"):
        assert page.count(tag) == 0, tag
    assert "@font-face" not in "".join(page.styles)


def test_the_page_shows_the_oracles_numbers(mazur_html):
    source = mazur_html.read_text()
    for what, value in mazur_numbers().items():
        assert f"<mn>{value}</mn>" in source, what
    # the article's misprint appears once, where the lecture points it out
    assert source.count("0.75136079") == 1


def test_every_section_of_the_plan_is_on_the_page(mazur_html):
    from derive.app.api import Model
    from derive.lecture import Options, build_plan

    plan = build_plan(Model.load("mazur"), Options(exercises=True))
    source = mazur_html.read_text()
    for section in plan.sections:
        assert f'<section id="{section.key}">' in source
    page = Page(source)
    exercises = [b for s in plan.sections for b in s.blocks if type(b).__name__ == "Exercises"]
    assert page.count("details") == len(exercises[0].items) > 0
    # the network, one small diagram per weight derived by its paths, the loss curve
    assert page.count("svg") == 1 + 2 + 1


def test_path_colours_are_the_pdfs():
    from derive.lecture.html import PATH_COLOURS

    tex = (TEMPLATES / "lecture.tex.j2").read_text()
    pdf = [
        f"rgb({r},{g},{b})" for r, g, b in re.findall(r"\\definecolor\{path[A-D]\}\{RGB\}\{(\d+),(\d+),(\d+)\}", tex)
    ]
    assert list(PATH_COLOURS) == pdf


def test_w1s_diagram_colours_both_paths(mazur_html):
    source = mazur_html.read_text()
    full_w1 = source[source.index('<section id="full_w1">') :]
    svg = full_w1[full_w1.index("<svg") : full_w1.index("</svg>")]
    from derive.lecture.html import PATH_COLOURS

    # each path has its own edge h1 → o1 or h1 → o2 in its colour; w1's edge i1 → h1 is on both, black as in the PDF
    first, second = svg.count(f'stroke="{PATH_COLOURS[0]}"'), svg.count(f'stroke="{PATH_COLOURS[1]}"')
    assert first == 1 and second == 1
    assert svg.count('stroke="rgb(0,0,0)" stroke-width="3"') == 1


def test_chinese_page(tmp_path):
    source = lecture(tmp_path, "mazur", "--lang", "zh").read_text()
    assert '<html lang="zh">' in source
    assert "前向传播" in source and "链式法则" in source and "一步一步的反向传播示例" in source
    for what, value in mazur_numbers().items():
        assert f"<mn>{value}</mn>" in source, what


def test_builds_are_reproducible(tmp_path):
    a = lecture(tmp_path, "mazur", name="a").read_bytes()
    b = lecture(tmp_path, "mazur", name="b").read_bytes()
    assert a == b


HOSTILE = "<script>document.body.setAttribute('data-pwned', '1')</script><img src=x onerror=\"alert(1)\"> & \\input{x}"


def hostile_spec(tmp_path) -> Path:
    text = builtin_example_text("mazur")
    escaped = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace(
        'title = "A step-by-step backpropagation example"', f'title = "{escaped}"\ndescription = "{escaped}"'
    ).replace('source = "Mazur\'s article"', f'source = "{escaped}"')
    spec = tmp_path / "hostile.toml"
    spec.write_text(text)
    return spec


def test_spec_text_is_escaped(tmp_path):
    page = Page(lecture(tmp_path, hostile_spec(tmp_path)).read_text())
    assert page.count("script") == 0 and page.count("img") == 0
    assert all("onerror" not in attrs for _, attrs in page.tags)
    text = "".join(page.text)
    assert text.count(HOSTILE) >= 3  # the title (twice: <title> and <h1>), the description, the source


def test_a_784_30_10_page_summarises(tmp_path):
    source = lecture(tmp_path, FIXTURES / "mnist_784_30_10.toml", "--steps", "20").read_text()
    page = Page(source)
    assert external_references(page) == []
    assert "⋮" in source  # elided neurons in the diagram
    assert page.count("math") > 50


# -- in a real browser -------------------------------------------------------------------


def chromium() -> str:
    """Debian's chromium, or a skip outside CI (make installs it for `make test`)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if IN_CI:
        pytest.fail("chromium is not installed, and CI must test the web page in a browser (make installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def browse(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            *args,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_browser_renders_every_formula_and_number(mazur_html, tmp_path):
    dom = browse(mazur_html, tmp_path, "--dump-dom").stdout
    written = Page(mazur_html.read_text())
    rendered = Page(dom)
    assert rendered.count("math") == written.count("math") > 100
    assert rendered.count("mfrac") > 20
    for what, value in mazur_numbers().items():
        assert f"<mn>{value}</mn>" in dom, what
    assert rendered.count("svg") == 4 and rendered.count("details") == 4


def test_in_the_browser_hostile_text_shows_and_nothing_runs(tmp_path):
    page = lecture(tmp_path, hostile_spec(tmp_path))
    dom = browse(page, tmp_path, "--dump-dom").stdout
    parsed = Page(dom)
    assert all("data-pwned" not in attrs for _, attrs in parsed.tags)  # the script did not run
    assert parsed.count("script") == 0 and parsed.count("img") == 0
    assert HOSTILE in "".join(parsed.text)


@pytest.mark.parametrize(("lang", "width"), [("en", 1000), ("zh", 1000), ("en", 400)])
def test_screenshots(tmp_path, lang, width):
    """A screenshot per language and a phone's width; docs/mazur-html.png is one of these, looked at."""
    page = lecture(tmp_path, "mazur", "--lang", lang)
    shot = tmp_path / "shot.png"
    run = browse(page, tmp_path, f"--screenshot={shot}", f"--window-size={width},2400")
    assert shot.exists(), run.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width_px, height_px = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width_px, height_px) == (width, 2400)
    assert len(data) > 30_000  # a page of text and drawings, not a blank one


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("example", ["chain_221", "mazur", "nielsen_tanh", "softmax", "swish"])
def test_every_example_renders_in_both_languages(example, lang):
    """Every built-in example with numbers (digits has no inputs: it has no lecture)."""
    from derive.app.api import Model
    from derive.lecture import Options, html_source

    source = html_source(Model.load(example), Options(lang=lang, steps=5, exercises=True))
    page = Page(source)
    assert external_references(page) == [] and page.count("script") == 0
    assert page.count("math") > 20 and page.count("details") >= 2
    assert "{{" not in source  # every placeholder of the word files filled
    import xml.etree.ElementTree as ET

    for element in math_elements(source):
        ET.fromstring(element)  # well-formed MathML: no raw & of an alignment left by the converter
    assert re.findall(r"<[^>]*−[^>]*>", source) == []  # a typographic minus in text only, never in markup


# -- what the page sets: alignments, minus signs, primes, every sentence ---------------------------


def math_elements(source: str) -> list[str]:
    return re.findall(r"<math\b.*?</math>", source, re.S)


@pytest.fixture(scope="module", params=["en", "zh"])
def page_and_plan(request, tmp_path_factory):
    """A lecture page (with its exercises) and the plan it was rendered from."""
    from derive.app.api import Model
    from derive.lecture import Options, build_plan, html_source

    options = Options(lang=request.param, exercises=True)
    model = Model.load("mazur")
    return html_source(model, options), build_plan(model, options)


def test_no_alignment_mark_or_line_break_reaches_the_maths(page_and_plan):
    """latex2mathml has no aligned environment: its & came out as a raw <mi>&</mi> in BP4's outer products."""
    import xml.etree.ElementTree as ET

    source, _ = page_and_plan
    assert "<mi>&</mi>" not in source and "<mi>&amp;</mi>" not in source
    for element in math_elements(source):
        ET.fromstring(element)  # well-formed: a raw & would not parse


def test_bp4_outer_products_are_aligned_as_in_the_pdf(page_and_plan):
    """Each layer's outer product: the gradients and (l = …) on one row, "= δ out" on the next (lecture.tex.j2)."""
    import xml.etree.ElementTree as ET

    source, _ = page_and_plan
    bp = source[source.index('<section id="bp">') :]
    bp = bp[: bp.index("</section>")]
    ns = {"m": "http://www.w3.org/1998/Math/MathML"}
    layers = []
    for element in math_elements(bp):
        table = ET.fromstring(element).find("m:mtable", ns)
        if table is None:
            continue
        rows = table.findall("m:mtr", ns)
        assert len(rows) == 2
        first = "".join(rows[0].itertext())
        second = "".join(rows[1].itertext())
        assert "(" in first and first.rstrip().endswith(")") and "=" in first  # (l = 3) beside the gradients
        assert second.strip().startswith("=")
        layers.append(re.search(r"\(l=(\d+)\)", first.replace(" ", "")).group(1))
    assert layers == ["3", "2"]


def test_split_top_keeps_matrices_and_escapes_whole():
    from derive.present.mathml import split_top

    row = r"\begin{pmatrix} a & b \\ c & d \end{pmatrix} &= x \& y & {p & q}"
    assert split_top(row, "&") == [r"\begin{pmatrix} a & b \\ c & d \end{pmatrix} ", r"= x \& y ", " {p & q}"]
    assert split_top(r"a \\ \begin{aligned} b \\ c \end{aligned}", "\\\\") == [
        "a ",
        r" \begin{aligned} b \\ c \end{aligned}",
    ]


def test_an_aligned_environment_becomes_a_table_and_a_stray_alignment_is_a_bug():
    from derive.present.mathml import mathml

    out = mathml(r"\begin{aligned} x &= \frac{1}{2} \\ &= \begin{pmatrix} a & b \end{pmatrix} \end{aligned}")
    assert out.count("<mtr>") == 3 and "<mi>&</mi>" not in out  # two rows, and the pmatrix's own row
    assert out.count("<mtd ") == 4 and 'columnalign="right left"' in out
    with pytest.raises(ValueError, match="alignment"):
        mathml("x &= y")
    with pytest.raises(ValueError, match="alignment"):
        mathml(r"x = y \\ z")


def test_minus_signs_are_typographic_only_in_text(page_and_plan):
    """The loss plot's exponents: a − in the text, never in the tspan's attributes (10<tspan dy='−7'> showed 10−1)."""
    source, _ = page_and_plan
    assert re.findall(r"<[^>]*−[^>]*>", source) == []
    plot = source[source.index('<svg class="loss-plot"') :]
    plot = plot[: plot.index("</svg>")]
    exponents = re.findall(r"<tspan ([^>]*)>([^<]*)</tspan>", plot)
    assert len(exponents) >= 3
    for attributes, text in exponents:
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', attributes))
        assert attributes.isascii() and set(attrs) == {"dy", "font-size"}
        assert float(attrs["dy"]) < 0 and float(attrs["font-size"]) > 0  # raised, smaller: a superscript
        assert re.fullmatch(r"−?\d+", text)
    assert any(text.startswith("−") for _, text in exponents)  # the loss falls below 1


def test_a_prime_follows_its_base(page_and_plan):
    """f' is f′, not f with a superscript ′ (a browser shrinks that into a detached tick)."""
    source, _ = page_and_plan
    assert "&#x02032;" in source
    assert not re.search(r"<mi>&#x0203[23];</mi>(</mrow>)?</msu(b|p|bsup)>", source)
    assert '<mi>f</mi><mo lspace="0" rspace="0">&#x02032;</mo>' in source


def test_primes_in_sub_and_superscripts():
    from derive.present.mathml import mathml

    assert '<msub><mi>w</mi><mn>5</mn></msub><mo lspace="0" rspace="0">&#x02032;</mo>' in mathml("w_5'")
    double = mathml(r"\left(a^{2}\right)''")
    assert '<mo lspace="0" rspace="0">&#x02033;</mo>' in double and "<msup><mi>a</mi>" in double


def plan_sentences(blocks) -> list:
    """Every sentence a block of the plan says (its own, not those inside another sentence's fields)."""
    import dataclasses

    from derive.lecture.plan import Exercise, Say

    found = []

    def visit(value) -> None:
        if isinstance(value, Say):
            found.append(value)
        elif isinstance(value, tuple):
            for v in value:
                visit(v)
        elif dataclasses.is_dataclass(value) and (isinstance(value, Exercise) or type(value) in BLOCK_TYPES):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name))

    from derive.lecture import plan as plan_module

    BLOCK_TYPES = set(plan_module.Block.__args__)  # type: ignore[attr-defined]
    for b in blocks:
        visit(b)
    return found


def test_every_sentence_of_the_plan_is_on_the_page(page_and_plan):
    """Each title, paragraph, caption (the table's "Each gradient is the input of the weight …"), note, header, tag."""
    from derive.lecture.html import HtmlRenderer
    from derive.lecture.plan import Exercises

    source, plan = page_and_plan
    renderer = HtmlRenderer(plan)
    missing = []
    for section in plan.walk():
        said = [section.title, *plan_sentences(section.blocks)]
        web = {b.intro: f"{b.intro.key}_web" for b in section.blocks if isinstance(b, Exercises)}
        for s in said:
            shown = renderer.sentence(s)
            on_the_web = s in web and web[s] in renderer.words  # an exercise's intro has the page's own words
            if shown not in source and not on_the_web:
                missing.append((section.key, s.key))
    assert missing == []
    # the tables of §5.2 and §6.2 are introduced as in the PDF
    for key in ("others3", "others2"):
        section = source[source.index(f'<section id="{key}">') :]
        intro = renderer.sentence(plan.section(key).blocks[-2].caption)  # type: ignore[union-attr]
        assert intro in section[: section.index("<table>")]


def test_signs_brackets_and_scripted_brackets_are_set_as_tex_sets_them(page_and_plan):
    """= −0.2 (a sign, tight; the browser spaced it as binary), (1 − out) in plain brackets (a stretched
    bracket took a bigger glyph with wide bearings), and \\Bigr)_{out} stretched like its \\Bigl(."""
    from derive.present.mathml import mathml

    source, _ = page_and_plan
    assert "<mo>&#x0003D;</mo><mo>&#x02212;</mo>" not in source
    assert '<mo form="prefix" lspace="0" rspace="0">&#x02212;</mo>' in source
    assert not re.search(r"<msu(b|p|bsup)><mo [^>]*maxsize", source)
    sign = '<mo form="prefix" lspace="0" rspace="0">&#x02212;</mo>'
    assert mathml("x = -0.2").count(sign) == 1 and mathml(r"\left(-a\right) - b").count(sign) == 1
    assert mathml("a - b").count(sign) == mathml(r"(a) - b").count(sign) == mathml("f' - g").count(sign) == 0
    plain = mathml(r"a\,\left(1 - a_{2}\right)")
    assert plain.count('<mo stretchy="false">') == 2 and 'stretchy="true"' not in plain
    tall = mathml(r"\left(1 - \left(a\right) \frac{1}{2}\right)")
    assert tall.count('stretchy="true"') == 2 and tall.count('<mo stretchy="false">') == 2
    scripted = mathml(r"\Bigl(\frac{a}{b}\Bigr)_{x}")
    assert re.search(r'<msub><mrow><mo [^>]*maxsize="[^"]*"[^>]*>\)</mo></mrow>', scripted)


def test_a_displayed_sum_has_its_limits_under_it():
    """As in the PDF's displays (chain_many): ∑ over the paths with "paths: q → … → E" under it; inline, beside it."""
    from derive.present.mathml import mathml

    assert "<munder><mo>&#x02211;</mo>" in mathml(r"\sum_{i} x", display=True)
    assert "<munder><mo>&#x0220F;</mo>" in mathml(r"\prod_{i} x", displaystyle=True)
    assert "<msub><mo>&#x02211;</mo>" in mathml(r"\sum_{i} x")
    assert "<mi>&#x02026;</mi>" in mathml(r"q \to \dots \to E")
