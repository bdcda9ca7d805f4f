"""A gradebook: every student's submission checked against their own variant (``derive grade``).

A class folder is what ``derive exercises`` wrote: ``variants.toml`` names each student's spec and
the questions (claim names such as ``out_o2``, ``dE/dw1``, ``w1'``). A submissions folder holds one
claims file per student, named like the student (``student-07.txt``). Each student gets a row:

- ``status``: ``ok`` (graded), ``missing`` (no file) or ``unreadable`` (a file that is not a claims
  file, or names no quantity of the spec), with ``reason`` saying why in one line; a missing or
  unreadable submission scores 0;
- ``score`` of ``total``: the questions answered right, checked as ``derive check`` checks them (the
  variant's required digits, correctly rounded);
- one cell per question: ``ok``, ``wrong: <diagnosis>`` (``wrong`` when no named mistake reproduces
  the answer) or ``missing``. When a question is answered twice, the last line counts.

No bad file stops the gradebook: each is one row's reason. Only a class folder that cannot be read
at all is an error.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeriveError

if TYPE_CHECKING:
    from ..core.worked import Worked
    from ..spec.reading import Spec

MAX_MANIFEST_BYTES = 4_000_000  # a class set's variants.toml (a few hundred bytes a student)
MAX_STUDENTS = 10_000
_SPEC_FILE = re.compile(r"student-(?P<label>\d{1,6})\.toml\Z")
_QUESTION = re.compile(r"[A-Za-z][\w'/@\[\]()]{0,199}\Z")
STATUSES = ("ok", "missing", "unreadable")
COLUMNS = ("student", "status", "score", "total", "reason")


@dataclass(frozen=True)
class Student:
    """A student of the class set: their label ("07") and the spec of their variant."""

    label: str
    spec: Path

    @property
    def submission(self) -> str:
        return f"student-{self.label}.txt"


@dataclass(frozen=True)
class ClassFolder:
    """What a class folder's variants.toml says: the questions and the students."""

    folder: Path
    questions: tuple[str, ...]
    students: tuple[Student, ...]


@dataclass(frozen=True)
class Row:
    """One student's line of the gradebook."""

    student: str
    status: str
    score: int
    total: int
    reason: str = ""
    cells: dict[str, str] = field(default_factory=dict)  # question → ok, wrong: <diagnosis>, missing


@dataclass(frozen=True)
class Gradebook:
    questions: tuple[str, ...]
    rows: tuple[Row, ...]
    ignored: tuple[str, ...] = ()  # files in the submissions folder named like no student


def read_class(folder: str | Path) -> ClassFolder:
    """The class folder's questions and students, from its variants.toml (an error if it cannot be read)."""
    from ..files import read_text_input, shown_path

    root = Path(folder)
    if not root.is_dir():
        raise DeriveError("no such folder" if not root.exists() else "is not a folder", where=shown_path(root))
    manifest = root / "variants.toml"
    where = shown_path(manifest)
    if not manifest.exists():
        raise DeriveError(
            "no variants.toml: not a class folder",
            where=shown_path(root),
            hint="give the folder `derive exercises … -o DIR` wrote",
        )
    try:
        data = tomllib.loads(read_text_input(manifest, "class set's variants.toml", MAX_MANIFEST_BYTES))
    except tomllib.TOMLDecodeError as exc:
        raise DeriveError(f"malformed TOML: {exc}", where=where) from None
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions or not all(isinstance(q, str) for q in questions):
        raise DeriveError("expected a list of question names", where=f"{where}: questions")
    for i, q in enumerate(questions):
        if not _QUESTION.match(q):
            raise DeriveError("not a claim name", where=f"{where}: questions[{i}]")
    if len(set(questions)) != len(questions):
        raise DeriveError("a question is listed twice", where=f"{where}: questions")
    entries = data.get("variants")
    if not isinstance(entries, list) or not entries:
        raise DeriveError("expected [[variants]] tables, one per student", where=f"{where}: variants")
    if len(entries) > MAX_STUDENTS:
        raise DeriveError(f"more than {MAX_STUDENTS:,} students", where=f"{where}: variants")
    students = []
    for i, entry in enumerate(entries):
        spec = entry.get("spec") if isinstance(entry, dict) else None
        match = _SPEC_FILE.match(spec) if isinstance(spec, str) else None
        if match is None:
            raise DeriveError('expected spec = "student-NN.toml"', where=f"{where}: variants[{i}].spec")
        students.append(Student(match["label"], root / match.group(0)))
    labels = [s.label for s in students]
    if len(set(labels)) != len(labels):
        raise DeriveError("a student is listed twice", where=f"{where}: variants")
    return ClassFolder(root, tuple(questions), tuple(students))


def grade_class(
    class_folder: str | Path,
    submissions: str | Path,
    load: Callable[[Spec], Worked],
    log: Callable[[str], None] = lambda message: None,
) -> Gradebook:
    """Every student's row: their submission checked against their variant (see the module's docstring)."""
    from ..files import shown_path

    klass = read_class(class_folder)
    folder = Path(submissions)
    if not folder.is_dir():
        raise DeriveError("no such folder" if not folder.exists() else "is not a folder", where=shown_path(folder))
    rows = []
    for student in klass.students:
        rows.append(_grade(student, klass.questions, folder / student.submission, load))
        log(f"graded student {student.label}: {rows[-1].status}")
    expected = {s.submission for s in klass.students}
    ignored = tuple(sorted(p.name for p in folder.iterdir() if p.name not in expected and not p.name.startswith(".")))
    return Gradebook(klass.questions, tuple(rows), ignored)


def _grade(student: Student, questions: Sequence[str], path: Path, load: Callable[[Spec], Worked]) -> Row:
    from ..check.claims import canonical_names, check, load_claims
    from ..files import shown_path
    from ..spec.reading import load_spec

    total = len(questions)
    if not path.exists() and not path.is_symlink():
        return Row(student.label, "missing", 0, total, f"no file {path.name}", dict.fromkeys(questions, "missing"))
    try:
        claims = load_claims(path)
    except DeriveError as exc:
        reason = " ".join(str(DeriveError(exc.message, exc.where)).split())  # a claims file's errors quote none of it
        return Row(student.label, "unreadable", 0, total, reason, dict.fromkeys(questions, "missing"))
    try:
        model = load(load_spec(student.spec))
        wanted = canonical_names(model, questions)
        try:
            report = check(model, claims)
        except DeriveError as refused:
            # a line answering no question may be one check cannot judge (a claim after more updates than the
            # high-precision replay budget): it is not graded, and must not cost the answers their marks
            try:
                asked = [c for c in claims if next(iter(canonical_names(model, [c.name]))) in wanted]
            except DeriveError:  # a name the spec does not have: check's own error says where
                raise refused from None
            if len(asked) == len(claims):
                raise
            report = check(model, asked)
            extra_lines = len(claims) - len(asked)
        else:
            extra_lines = 0
    except DeriveError as exc:
        reason = _one_line(exc)
        if not exc.where:
            reason = f"{shown_path(path)}: {reason}"
        return Row(student.label, "unreadable", 0, total, reason, dict.fromkeys(questions, "missing"))
    answers: dict[str, Any] = {}
    extra = extra_lines
    for result in report.results:
        name = result.quantity.name
        if name in wanted:
            answers[wanted[name]] = result  # a question answered twice: the last line counts
        else:
            extra += 1
    cells = {}
    for q in questions:
        r = answers.get(q)
        if r is None:
            cells[q] = "missing"
        elif r.ok:
            cells[q] = "ok"
        else:
            cells[q] = f"wrong: {r.diagnosis.code}" if r.diagnosis else "wrong"
    score = sum(c == "ok" for c in cells.values())
    notes = []
    unanswered = sum(c == "missing" for c in cells.values())
    if unanswered:
        notes.append(f"{unanswered} question{'s' if unanswered != 1 else ''} not answered")
    if extra:
        notes.append(f"{extra} line{'s' if extra != 1 else ''} answering no question (not graded)")
    return Row(student.label, "ok", score, total, "; ".join(notes), cells)


def _one_line(exc: DeriveError) -> str:
    """The error in one line, with no text of the file quoted ("unknown name 'x'" becomes "unknown name")."""
    message = re.sub(r"\s*(?:'[^']*'|\"[^\"]*\")", "", exc.message).lstrip(": ").strip()
    return " ".join(str(DeriveError(message, exc.where)).split())


def gradebook_csv(book: Gradebook) -> str:
    """The gradebook as CSV: student,status,score,total,reason, then one column per question."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *(_cell(q) for q in book.questions)])
    for row in book.rows:
        writer.writerow(
            [row.student, row.status, row.score, row.total, _cell(row.reason), *(row.cells[q] for q in book.questions)]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (=, +, -, @ first)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def gradebook_json(book: Gradebook) -> dict[str, Any]:
    """{"questions": [...], "students": [{"student", "status", "score", "total", "reason", "answers"}], …}."""
    return {
        "questions": list(book.questions),
        "students": [
            {
                "student": r.student,
                "status": r.status,
                "score": r.score,
                "total": r.total,
                "reason": r.reason,
                "answers": r.cells,
            }
            for r in book.rows
        ],
        "ignored": list(book.ignored),
    }
