"""Writing output files: whole or not at all, only into folders that exist.

The one home of atomic writes (the CLI, lectures and generated modules use it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from .errors import DeriveError


class OutputError(DeriveError):
    """An output path that cannot be used."""


LectureFormat = Literal["pdf", "tex", "html"]
LECTURE_SUFFIXES: dict[str, LectureFormat] = {".pdf": "pdf", ".tex": "tex", ".html": "html", ".htm": "html"}


def lecture_format(target: Path, fmt: str | None) -> LectureFormat:
    """The format of a lecture written to ``target``: from its suffix, which ``fmt`` (if given) must agree with."""
    by_suffix = LECTURE_SUFFIXES.get(target.suffix.lower())
    if by_suffix is None and fmt is not None and not target.suffix:
        return fmt  # type: ignore[return-value]  # a click choice of LECTURE_FORMATS; a bare name takes --format
    if by_suffix is None:
        raise DeriveError(
            f"cannot tell the format from the suffix {target.suffix or '(none)'!r}",
            where=str(target),
            hint="name the file with one of " + ", ".join(LECTURE_SUFFIXES),
        )
    if fmt is not None and fmt != by_suffix:
        raise DeriveError(f"--format {fmt} does not match the suffix {target.suffix}", where=str(target))
    return by_suffix


def check_target(path: Path | str) -> Path:
    """The path to write, after checking that its folder exists and that it is not a folder itself.

    Folders are never created: a mistyped ``-o /nonexistent/x.pdf`` is an error naming the folder.
    """
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise OutputError("is a folder; give a file name", where=str(target))
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "no such folder"
        raise OutputError(
            f"cannot write {target.name}: {what}",
            where=str(parent),
            hint=f"create it first (mkdir -p {parent}) or choose another path",
        )
    return target


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file renamed into place; return the path.

    A reader never sees a half-written file, and a failed write leaves no trace.
    """
    target = check_target(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
