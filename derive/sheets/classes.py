"""Exercise sheets: one sheet and one answer key per student variant.

The flow is variants → plan → renderer: :mod:`derive.sheets.variants` draws each
student's spec, :func:`derive.lecture.sheet.sheet_exercises` sets its questions
(each answered under a *claim name* such as ``out_o2``, ``dE/dw8``, ``w1'``, so a
student's ``NAME = VALUE`` lines are graded by ``derive check student-07.toml
--claims FILE``), :func:`derive.lecture.sheet.sheet_plan` lays out the sheet or
the key as a lecture plan, and the lecture's LaTeX or HTML renderer formats it.
:func:`build_class` and :func:`write_class` make a whole class set.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeriveError
from ..files import new_temporary, track, untrack, whole
from ..lecture.plan import Claim, Exercise, LecturePlan
from ..lecture.sheet import KEY, SHEET, sheet_exercises, sheet_plan
from ..present import numbers
from .variants import Variant, draw_variants, dump_toml

if TYPE_CHECKING:
    from ..core.worked import Worked
    from ..spec.reading import Spec

ANSWER_DIGITS = 10  # significant digits in the answers file: enough for derive check at any shown precision
FORMATS = ("pdf", "html", "moodle")  # moodle: a Moodle XML question bank instead of sheets and keys


@dataclass(frozen=True)
class Sheet:
    """One student's exercises: the variant, its model and its questions with their worked answers."""

    variant: Variant
    model: Worked
    exercises: tuple[Exercise, ...]

    @property
    def claims(self) -> tuple[Claim, ...]:
        """Every number the student hands in, in the order asked."""
        return tuple(c for e in self.exercises for c in e.claims)

    def plan(self, part: str, lang: str = "en", digits: int = numbers.DEFAULT_DIGITS) -> LecturePlan:
        """The sheet (``part`` "sheet") or the answer key ("key") as a plan for the lecture's renderers."""
        return sheet_plan(self.model, self.exercises, self.variant.label, part, lang, digits)


def sheet_tex(sheet: Sheet, key: bool, lang: str = "en", digits: int = numbers.DEFAULT_DIGITS) -> str:
    """The sheet (``key`` False) or its answer key as a LaTeX document."""
    from ..lecture.latex import tex_source

    return tex_source(sheet.plan(KEY if key else SHEET, lang, digits))


def sheet_html(sheet: Sheet, key: bool, lang: str = "en", digits: int = numbers.DEFAULT_DIGITS) -> str:
    """The sheet (``key`` False) or its answer key as one self-contained web page."""
    from ..lecture.html import html_source

    return html_source(sheet.plan(KEY if key else SHEET, lang, digits))


# --------------------------------------------------------------------------
# a class set


@dataclass(frozen=True)
class ClassSet:
    """Every student's sheet, with what `derive exercises` writes for it."""

    base: str  # the spec as given (a file or a built-in example)
    name: str  # the base spec's name
    seed: int
    weights: bool
    sheets: tuple[Sheet, ...]

    @property
    def question_names(self) -> list[str]:
        return [c.name for c in self.sheets[0].claims] if self.sheets else []


def build_class(
    ref: str | Path,
    students: int,
    seed: int,
    weights: bool = False,
    digits: int = numbers.DEFAULT_DIGITS,
    *,
    load: Callable[[Spec], Worked],
) -> ClassSet:
    """Draw the variants and set each student's questions (no files written); ``load`` makes a variant's model."""
    from ..spec.reading import load_spec

    variants = draw_variants(ref, students, seed, weights)  # refuses networks too wide to work by hand
    base = load_spec(ref)
    sheets = []
    for v in variants:
        model = load(v.spec)
        sheets.append(Sheet(v, model, sheet_exercises(model, digits)))
    return ClassSet(str(ref), base.name, seed, weights, tuple(sheets))


STUDENT_FILE = re.compile(r"student-\d+(-(sheet|key|answers|lecture))?\.(toml|txt|pdf|html)")  # see files_of


def files_of(label: str, lectures: bool = False, fmt: str = "pdf") -> dict[str, str]:
    """The files written for a student, by role."""
    stem = f"student-{label}"
    files = {"spec": f"{stem}.toml", "answers": f"{stem}-answers.txt"}
    if fmt != "moodle":  # a Moodle class set's questions and keys are its question bank
        files.update({"sheet": f"{stem}-sheet.{fmt}", "key": f"{stem}-key.{fmt}"})
    if lectures:
        files["lecture"] = f"{stem}-lecture.{fmt}"
    return files


def answers_text(sheet: Sheet) -> str:
    """The correct answers as a claims file that `derive check` accepts."""
    label = sheet.variant.label
    lines = [
        f"# Student {label}'s answers, computed by derive. A student's own answers file has the same lines;",
        f"# grade it with: derive check {files_of(label)['spec']} --claims FILE",
    ]
    lines += [f"{c.name} = {numbers.format_number(c.value, ANSWER_DIGITS)}" for c in sheet.claims]
    return "\n".join(lines) + "\n"


def variants_toml(class_set: ClassSet, lectures: bool = False, fmt: str = "pdf") -> str:
    """DIR/variants.toml: the class set, with each student's spec and files."""
    data: dict[str, Any] = {
        "base": class_set.base,
        "seed": class_set.seed,
        "students": len(class_set.sheets),
        "weights": class_set.weights,
        "questions": class_set.question_names,
        "variants": [
            {
                "student": s.variant.student,
                **files_of(s.variant.label, lectures, fmt),
                "inputs": list(s.variant.inputs),
                "targets": list(s.variant.targets),
            }
            for s in class_set.sheets
        ],
    }
    header = (
        "# A class set written by derive exercises: one spec, sheet, answer key and answers file per student.\n"
        "# Grade a student's numbers with: derive check student-NN.toml --claims THEIR-ANSWERS.txt\n"
    )
    return header + dump_toml(data)


def write_class(
    class_set: ClassSet,
    directory: Path,
    lang: str = "en",
    digits: int = numbers.DEFAULT_DIGITS,
    jobs: int = 1,
    log: Callable[[str], None] = lambda message: None,
    lectures: bool = False,
    fmt: str = "pdf",
    bank: Callable[[ClassSet, str, int], tuple[str, str]] | None = None,
) -> float:
    """Write every file of the class set into ``directory``; returns the seconds it took.

    ``bank`` writes a "moodle" class set's question bank: (file name, its text) for the class set, the
    language and the digits (:func:`derive.grading.moodle.question_bank`; the caller picks the writer).

    ``fmt`` "pdf" builds each sheet and key with LaTeX; "html" writes each as one
    self-contained web page (no TeX needed). With ``lectures``, each student also
    gets the whole lecture of their variant with its exercises (derive lecture
    --exercises): every number worked. Everything is built in a staging directory
    first and moved in at the end, so a failure (say, TeX) leaves no half-written
    class set.
    """
    from ..lecture import Options
    from ..lecture import html_source as lecture_html
    from ..lecture import tex_source as lecture_tex
    from ..lecture.texbuild import check_tools, compile_pdf

    check_format(fmt)
    if fmt == "moodle" and lectures:
        raise DeriveError("--lectures writes PDF or HTML lectures, not Moodle questions", hint="drop --lectures")
    if fmt == "pdf":
        check_tools(lang)
    started = time.perf_counter()
    if not directory.parent.is_dir():
        from ..files import check_target

        check_target(directory)  # the error naming the missing folder: only the class set's own folder is made
    names = {
        "variants.toml",
        *(name for s in class_set.sheets for name in files_of(s.variant.label, lectures, fmt).values()),
    }
    _refuse_inputs(directory, names)  # the spec a class set was drawn from may be one of its students' files
    made = not directory.exists()
    directory.mkdir(exist_ok=True)
    if made:
        track(directory)  # a stop by a signal leaves no empty class folder behind
    earlier = recorded_files(directory)  # what an earlier class set here wrote: the only files ever removed
    _refuse_inputs(directory, earlier)  # a stale student file this command read is not removed either
    staging = Path(new_temporary(directory, ".derive-exercises-")[1])  # tracked: a signal removes it
    try:
        builds: list[tuple[str, Path]] = []  # LaTeX sources to compile into PDFs
        for sheet in class_set.sheets:
            files = files_of(sheet.variant.label, lectures, fmt)
            (staging / files["spec"]).write_text(sheet.variant.toml, encoding="utf-8")
            (staging / files["answers"]).write_text(answers_text(sheet), encoding="utf-8")
            options = Options(lang=lang, digits=digits, exercises=True)
            if fmt == "moodle":
                continue
            if fmt == "html":
                (staging / files["sheet"]).write_text(sheet_html(sheet, False, lang, digits), encoding="utf-8")
                (staging / files["key"]).write_text(sheet_html(sheet, True, lang, digits), encoding="utf-8")
                if lectures:
                    (staging / files["lecture"]).write_text(lecture_html(sheet.model, options), encoding="utf-8")
                log(f"wrote {files['sheet']} and {files['key']}")
                continue
            builds.append((sheet_tex(sheet, key=False, lang=lang, digits=digits), staging / files["sheet"]))
            builds.append((sheet_tex(sheet, key=True, lang=lang, digits=digits), staging / files["key"]))
            if lectures:
                builds.append((lecture_tex(sheet.model, options), staging / files["lecture"]))
        (staging / "variants.toml").write_text(variants_toml(class_set, lectures, fmt), encoding="utf-8")
        if fmt == "moodle":
            if bank is None:
                raise ValueError("a Moodle class set needs the writer of its question bank")
            name, text = bank(class_set, lang, digits)
            (staging / name).write_text(text, encoding="utf-8")
            log(f"wrote {name}")

        def build(job: tuple[str, Path]) -> None:
            compile_pdf(job[0], job[1], lang)
            log(f"built {job[1].name}")

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(build, builds))  # latexmk runs as a subprocess: threads are enough
        written = sorted(staging.iterdir())
        # the question bank and the stale files too (variants.toml was read here as the earlier class set's record)
        _refuse_inputs(directory, ({path.name for path in written} | earlier) - {"variants.toml"})
        with whole():  # a signal waits until the class set is in place
            for path in written:
                os.replace(path, directory / path.name)
            untrack(directory)
            # an earlier, larger class set's students would sit beside this one's variants.toml
            for stale in sorted(earlier - {path.name for path in written}):
                (directory / stale).unlink(missing_ok=True)
    except BaseException:
        for tex_file in staging.glob("*.tex"):  # a failed build's LaTeX, for the bug report
            shutil.copy(tex_file, directory / tex_file.name)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        untrack(staging)
        untrack(directory)
    return time.perf_counter() - started


def _refuse_inputs(directory: Path, names: set[str]) -> None:
    """Refuse a class set that would replace or remove a file this command read (its spec, say)."""
    from ..files import refuse_input

    for name in sorted(names):
        refuse_input(os.path.realpath(directory / name), shown=directory / name)


def recorded_files(directory: Path) -> set[str]:
    """The student files the class set's variants.toml in ``directory`` says derive wrote (none if unreadable).

    Only these are ever removed when a new class set replaces it: a file of the
    user's, even one named like a student's, is not derive's to delete.
    """
    import tomllib

    from ..files import MAX_CLAIMS_BYTES, read_text_input

    manifest = directory / "variants.toml"
    if not manifest.exists():
        return set()
    try:
        data = tomllib.loads(read_text_input(manifest, "class set's variants.toml", MAX_CLAIMS_BYTES))
    except (DeriveError, tomllib.TOMLDecodeError, RecursionError):
        return set()
    entries = data.get("variants")
    names = set()
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            for role in ("spec", "sheet", "key", "answers", "lecture"):
                name = entry.get(role)
                if isinstance(name, str) and STUDENT_FILE.fullmatch(name):
                    names.add(name)
    return names


def check_format(fmt: str) -> None:
    """PDF or HTML."""
    if fmt not in FORMATS:
        raise DeriveError(f"--format {fmt}: exercise sheets are {', '.join(FORMATS)}", hint="use --format pdf")
