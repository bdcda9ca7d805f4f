"""Free text in English PDFs: typographic characters pdflatex can set keep their form; the rest is '?'."""

import subprocess

from click.testing import CliRunner
from conftest import need_tex

from derive.app.cli import main
from derive.present.texsafe import escape
from derive.spec.reading import builtin_example_text


def test_typographic_characters_take_their_latex_spelling():
    text = "Mazur’s 2–2–2 net — σ′ “quoted” €5 … Σ Α ≤"
    assert escape(text, unicode_ok=False) == (
        r"Mazur's 2--2--2 net --- \ensuremath{\sigma}\ensuremath{'} ``quoted'' \texteuro{}5 \ldots{} "
        r"\ensuremath{\Sigma} A \ensuremath{\le}"
    )
    assert escape("emoji 🙂", unicode_ok=False) == "emoji ?"
    assert escape(text) == text  # xelatex sets them all


def test_a_typographic_title_reads_the_same_in_the_pdf(tmp_path):
    need_tex()
    title = "Mazur’s 2–2–2 net — σ “quoted” €5 … Δw ≤ 1"
    spec = tmp_path / "typo.toml"
    spec.write_text(builtin_example_text("mazur").replace("A step-by-step backpropagation example", title, 1))
    pdf = tmp_path / "typo.pdf"
    result = CliRunner().invoke(main, ["lecture", str(spec), "-o", str(pdf)])
    assert result.exit_code == 0, result.output
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # the PDF's glyphs for \ldots and \Delta read back as ". . ." and U+2206 (increment)
    text = text.replace(". . .", "…").replace("\u2206", "Δ")
    assert "?" not in text.split("\n\n")[0], text[:300]
    for piece in ("Mazur’s", "2–2–2", "—", "σ", "“quoted”", "€5", "…", "Δw", "≤"):
        assert piece in text, (piece, text[:300])
