"""Compiling LaTeX: latexmk in a temporary directory, non-interactive, no shell escape.

Builds are reproducible: SOURCE_DATE_EPOCH and FORCE_SOURCE_DATE are set unless
the user set them, and the job always has the same name, so the same source
gives the byte-identical PDF.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import DeriveError
from ..files import run_child, scratch_folder, write_atomic

ENGLISH_PACKAGES = "latexmk texlive-latex-base texlive-latex-recommended texlive-pictures lmodern poppler-utils"
CHINESE_PACKAGES = "texlive-xetex texlive-lang-chinese texlive-fonts-recommended"
DEFAULT_EPOCH = "1700000000"  # a fixed date for every build that does not set its own
JOB = "lecture"
MAX_TEX_BYTES = 2 * 2**20  # LaTeX source compiled at most (Mazur's lecture: 33 kB; 784-256-256-10's: 45 kB)


class TexMissing(DeriveError):
    """No TeX engine to compile with."""


class TexFailed(DeriveError):
    """The LaTeX build failed."""


def engine_for(lang: str) -> tuple[str, str]:
    """(latexmk flag, program) for a language."""
    return ("-xelatex", "xelatex") if lang == "zh" else ("-pdf", "pdflatex")


def check_tools(lang: str) -> None:
    _, program = engine_for(lang)
    missing = [tool for tool in ("latexmk", program) if shutil.which(tool) is None]
    if missing:
        packages = ENGLISH_PACKAGES + (" " + CHINESE_PACKAGES if lang == "zh" else "")
        raise TexMissing(
            f"cannot compile the lecture: {' and '.join(missing)} not found",
            hint=f"install TeX: apt-get install -y --no-install-recommends {packages}",
        )


def build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SOURCE_DATE_EPOCH", DEFAULT_EPOCH)
    env.setdefault("FORCE_SOURCE_DATE", "1")
    env["TEXINPUTS"] = ""  # only the distribution's files: nothing from the working directory tree
    return env


def compile_pdf(source: str, target: Path, lang: str, keep_tex: Path | None = None) -> None:
    """Compile ``source`` to ``target`` (written whole or not at all).

    On failure, raise :class:`TexFailed` with the LaTeX error lines; the .tex
    is kept next to the target so the user can look at it.
    """
    size = len(source.encode("utf-8"))
    if size > MAX_TEX_BYTES:  # a size estimate, not a clock: TeX would run for many minutes (400 layers: 30 MB)
        raise TexFailed(
            f"the LaTeX source is {size:,} bytes; the limit for compiling is {MAX_TEX_BYTES:,} (TeX size limit)",
            where=str(target),
            hint="write the source (-o FILE.tex) or a web page (-o FILE.html) instead",
        )
    check_tools(lang)
    flag, _ = engine_for(lang)
    with scratch_folder("derive-tex-") as work:  # removed by the CLI's signal handler too
        (work / f"{JOB}.tex").write_text(source, encoding="utf-8")
        command = [
            "latexmk",
            flag,
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-file-line-error",
            "-no-shell-escape",
            f"-jobname={JOB}",
            f"{JOB}.tex",
        ]
        try:
            proc = run_child(
                command,
                timeout=600,
                cwd=work,
                env=build_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise TexFailed("the LaTeX build took more than 10 minutes") from None
        pdf = work / f"{JOB}.pdf"
        if proc.returncode != 0 or not pdf.is_file():
            log = (
                (work / f"{JOB}.log").read_text(encoding="utf-8", errors="replace")
                if (work / f"{JOB}.log").is_file()
                else proc.stdout
            )
            kept = keep_tex or target.with_suffix(".tex")
            write_atomic(kept, source.encode("utf-8"))
            raise TexFailed(
                "the LaTeX build failed:\n" + error_lines(log),
                where=str(kept),
                hint="this is a bug in derive if the spec is valid; please report it with the .tex file",
            )
        write_atomic(target, pdf.read_bytes())
    if keep_tex is not None:
        write_atomic(keep_tex, source.encode("utf-8"))


def error_lines(log: str, limit: int = 20) -> str:
    """The lines of a LaTeX log that say what went wrong."""
    lines = log.splitlines()
    picked: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("!") or re.match(r"^[^:\s]+\.tex:\d+:", line):
            picked.extend(lines[i : i + 3])
        if len(picked) >= limit:
            break
    return "\n".join("  " + line for line in (picked or lines[-limit:])[:limit])


def write_tex(path: Path, source: str) -> None:
    write_atomic(path, source)
