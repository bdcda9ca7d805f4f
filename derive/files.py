"""Files: reading untrusted inputs, writing outputs, and what a stop by a signal must clean up.

The one home of these rules (the CLI, the spec reader, claims, data sets,
lectures, exercise sheets and generated modules use it):

- outputs are written whole or not at all, only into folders that exist, through
  a symbolic link to the file it names, and into a FIFO or a device without
  replacing it; never onto a file the command read (:func:`write_atomic`);
- inputs are read only when they are regular files no larger than a limit, told
  apart by their first bytes, and (files named in a spec) inside the spec's
  folder (:func:`read_input`, :func:`inside`, :func:`file_format`);
- temporary files and folders and subprocesses are registered, so that the CLI's
  signal handler removes and ends them (:func:`stop_cleanly`).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

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

    Folders are never created: a mistyped ``-o /nonexistent/x.pdf`` is an error naming the folder. A file
    this command read (its spec, data set or claims file) is refused: writing it would destroy the input.
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
    refuse_input(os.path.realpath(target), shown=target)
    return target


# --------------------------------------------------------------------------
# writing: the one output writer


def write_atomic(path: Path | str, data: bytes | str) -> Path:
    """Write ``data`` to ``path``; return the path. The one writer of every output file.

    What happens depends on what ``path`` is, as with other Unix tools:

    - a regular file, or nothing yet: a temporary file beside it renamed into place,
      so a reader never sees a half-written file and a failed write leaves no trace
      ("whole or not at all"); an existing file keeps its permissions (0600 stays 0600);
    - a symbolic link: followed to the file it names, which is then written as above
      (the link stays a link);
    - a FIFO or a device: opened and written through, never replaced;
    - a file this process read as an input (the spec, a data set, a claims file): refused.
    """
    target = check_target(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    real = Path(os.path.realpath(target))  # the file a symbolic link (or a chain of them) names
    try:
        mode: int | None = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        _write_through(real, payload, mode, shown=target)
        return target
    if not real.parent.is_dir():  # a dangling link into a folder that does not exist
        check_target(real)
    fd, tmp = new_temporary(real.parent, f".{real.name}.", ".tmp", folder=False)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        if mode is None:
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # made 0600; give a new file the usual permissions
        else:
            os.chmod(tmp, stat.S_IMODE(mode))  # an existing file keeps its own
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        untrack(tmp)
    return target


def _write_through(real: Path, payload: bytes, mode: int, shown: Path) -> None:
    """Write into a FIFO or a device as `cat > target` would: it is opened, never replaced."""
    if stat.S_ISSOCK(mode) or stat.S_ISDIR(mode):
        raise OutputError("is a socket, not a file; give a file name", where=str(shown))
    fd = os.open(real, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# inputs: every file derive reads that the user named (spec, claims, data, values files)

MAX_SPEC_BYTES = 16 * 2**20  # a spec with every weight of a 784-256-256-10 network written out is 2.5 MB
MAX_CLAIMS_BYTES = 4 * 2**20
MAX_VALUES_BYTES = 64 * 2**20  # a values_file / targets_file
MAX_DATA_BYTES = 1024 * 2**20  # a `fit --data` file, and the arrays it holds once decompressed
MAX_ARCHIVE_MEMBERS = 64

_inputs: set[tuple[int, int, int, int]] = set()  # (device, inode, size, mtime) of each input read
_outside_allowed = [False]


class InputError(DeriveError):
    """An input file that cannot or may not be read."""


def allow_outside(allowed: bool) -> None:
    """Let files named in a spec lie outside its folder (the command line's --allow-outside)."""
    _outside_allowed[0] = allowed


def forget_inputs() -> None:
    """Start a new command: no file counts as read yet."""
    _inputs.clear()


def shown_path(path: Path | str) -> str:
    """A path as messages and documents print it: a name that is not UTF-8 gets U+FFFD for its bad bytes."""
    return os.fsencode(path).decode("utf-8", errors="replace")


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def refuse_input(path: Path | str, shown: Path | str | None = None) -> None:
    """Raise an OutputError when ``path`` is a file this command read: writing it would destroy the input."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if _identity(st) in _inputs:
        raise OutputError(
            "is one of this command's inputs; writing it would destroy it",
            where=shown_path(shown if shown is not None else path),
            hint="choose another output file",
        )


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a folder",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def read_input(path: Path | str, what: str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in messages: "spec", "claims file", …).

    Only regular files are read (a FIFO would hang, a device never end), and the
    size is checked against ``limit`` before a byte is read.
    """
    where = shown_path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"the {what} is {_kind(st.st_mode)}; derive reads only regular files", where=where)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"cannot read the {what}: no such file", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror or type(exc).__name__}", where=where) from None
    try:
        st = os.fstat(fd)  # the file opened, which a rename since the check above may have changed
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"the {what} is {_kind(st.st_mode)}; derive reads only regular files", where=where)
        _check_size(st.st_size, limit, what, where)
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size) or 1):
            chunks.append(chunk)
            size += len(chunk)
            _check_size(size, limit, what, where)  # a file that grew while read
        _inputs.add(_identity(st))
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror or type(exc).__name__}", where=where) from None
    finally:
        os.close(fd)


def _check_size(size: int, limit: int, what: str, where: str) -> None:
    if size > limit:
        raise InputError(f"the {what} is larger than the limit of {limit:,} bytes (file size limit)", where=where)


def read_text_input(path: Path | str, what: str, limit: int) -> str:
    """A regular file's text (UTF-8, a byte-order mark dropped): :func:`read_input`, then decoded."""
    data = read_input(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"the {what} is not UTF-8 text (byte {exc.start + 1})", where=shown_path(path)) from None


def inside(folder: Path, name: str, key: str) -> Path:
    """The file ``name`` of a spec's key, read from ``folder`` (the spec's): refused when it resolves outside.

    Symbolic links are resolved first, so a link cannot lead out either; the
    command line's --allow-outside lifts the rule.
    """
    path = folder / name
    if _outside_allowed[0]:
        return path
    root = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise InputError(
            "names a file outside the spec's folder",
            where=key,
            hint="files named in a spec are read from its folder; derive --allow-outside COMMAND … reads others",
        )
    return path


def file_format(data: bytes) -> str:
    """What a file holds, by its first bytes (never its suffix): "npy", "npz", "empty" or "text"."""
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "npz"
    return "text" if data.strip() else "empty"


def load_npy(data: bytes, where: str, limit: int, what: str = "the array") -> Any:
    """The array of a .npy file's bytes, its header checked (numbers only, at most ``limit`` bytes) first."""
    import io

    import numpy as np

    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"version {version[0]}.{version[1]} is not read")
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise InputError(f"{what} is not a readable .npy array ({type(exc).__name__})", where=where) from None
    if dtype.kind == "c":
        raise InputError(f"{what} holds complex numbers; derive reads real numbers", where=where)
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise InputError(f"{what} holds {dtype.str} values, not numbers", where=where)
    count = math.prod(shape)
    need = count * dtype.itemsize
    if need > limit:
        raise InputError(
            f"{what}'s header declares {need:,} bytes of numbers; the limit is {limit:,} (array size limit)",
            where=where,
        )
    offset = buffer.tell()
    if len(data) - offset < need:
        raise InputError(f"{what} is truncated: {need:,} bytes declared, {len(data) - offset:,} held", where=where)
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C")


def load_npz(data: bytes, where: str, limit: int) -> dict[str, Any]:
    """The arrays of a .npz archive's bytes, at most ``limit`` bytes in all once decompressed."""
    import io
    import zipfile

    arrays: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if len(members) > MAX_ARCHIVE_MEMBERS:
                raise InputError(f"more than {MAX_ARCHIVE_MEMBERS} arrays in the archive", where=where)
            declared = sum(m.file_size for m in members)
            if declared > limit:
                raise InputError(
                    f"decompresses to {declared:,} bytes; the limit is {limit:,} (array size limit)", where=where
                )
            left = limit
            for member in members:
                key = member.filename.removesuffix(".npy")
                with archive.open(member) as handle:
                    raw = handle.read(left + 1)  # never more than the limit, whatever the header says
                if len(raw) > left:
                    raise InputError(f"decompresses to more than the limit of {limit:,} bytes", where=where)
                left -= len(raw)
                arrays[key] = load_npy(raw, where, limit, key if key.isidentifier() else "an array")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
        raise InputError(f"not a readable .npz archive ({type(exc).__name__})", where=where) from None
    return arrays


def number_file(folder: Path, name: str, key: str, n: int) -> tuple[float, ...]:
    """The ``n`` numbers of a spec's ``values_file``/``targets_file`` ``name`` (under ``key``): a .npy array or text.

    Read from ``folder`` (the spec's) by the rules of :func:`read_input` and :func:`inside`.
    """
    where = f"{key} ({shown_path(name)})"
    try:
        data = read_input(inside(folder, name, key), "values file", MAX_VALUES_BYTES)
    except InputError as exc:
        raise InputError(exc.message, where=where, hint=exc.hint) from None
    kind = file_format(data)
    if kind == "npy":
        flat = [float(v) for v in load_npy(data, where, MAX_VALUES_BYTES).ravel()]
    elif kind == "npz":
        raise InputError("is a .npz archive; give a .npy array or a text file of numbers", where=where)
    elif kind == "empty":
        raise InputError("the file is empty", where=where)
    else:
        flat = _text_numbers(data, where, n)
    if len(flat) != n:
        raise InputError(f"expected {n} numbers, the file holds {len(flat)}", where=where)
    if not all(math.isfinite(v) for v in flat):
        raise InputError(f"item {next(i for i, v in enumerate(flat, 1) if not math.isfinite(v))} is not finite", where)
    return tuple(flat)


def _text_numbers(data: bytes, where: str, n: int) -> list[float]:
    """Numbers separated by commas or white space, ``#`` comments; an error says where, never what is there."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start + 1})", where=where) from None
    numbers: list[float] = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        for item, cell in enumerate(line.split("#", 1)[0].replace(",", " ").split(), start=1):
            try:
                numbers.append(float(cell))
            except ValueError:
                raise InputError(f"cannot read line {line_number}: item {item} is not a number", where=where) from None
            if len(numbers) > n:
                raise InputError(f"expected {n} numbers, the file holds more", where=where)
    return numbers


# --------------------------------------------------------------------------
# stopping: what a signal must clean up (the CLI's handler calls stop_cleanly)

_temporaries: dict[str, None] = {}  # insertion-ordered set of paths to remove on a stop
_children: dict[int, None] = {}  # process groups of running subprocesses (latexmk and its TeX)
_holding = [0]
_pending: list[Callable[[], None]] = []
# held while a temporary or a subprocess is made and registered, and by a stop for good: a thread
# cannot make one the stop would miss (re-entrant: the stop runs in the main thread, which may hold it)
_making = threading.RLock()


def track(path: Path | str) -> None:
    """Remove ``path`` (a file or a folder) if the process is stopped before :func:`untrack`."""
    _temporaries[str(path)] = None


def untrack(path: Path | str) -> None:
    _temporaries.pop(str(path), None)


def new_temporary(parent: Path | str | None, prefix: str, suffix: str = "", folder: bool = True) -> tuple[int, str]:
    """A new temporary folder (fd -1) or file (an open fd) in ``parent``, tracked before it exists.

    Tracked first, then made: a stop by a signal at any moment removes it, in whichever thread it was made.
    """
    base = tempfile.gettempdir() if parent is None else os.fspath(parent)
    with _making:
        while True:
            path = os.path.join(base, f"{prefix}{secrets.token_hex(6)}{suffix}")
            track(path)
            try:
                if folder:
                    os.mkdir(path, 0o700)
                    return -1, path
                return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), path
            except FileExistsError:
                untrack(path)
            except BaseException:
                untrack(path)
                raise


@contextmanager
def scratch_folder(prefix: str, folder: Path | str | None = None) -> Iterator[Path]:
    """A temporary folder, removed at the end and on a stop by a signal."""
    _, path = new_temporary(folder, prefix)
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        untrack(path)


def run_child(command: list[str], timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a process group of its own, which a stop by a signal ends with it."""
    with _making:
        proc = subprocess.Popen(command, start_new_session=True, text=True, **options)
        _children[proc.pid] = None
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    finally:
        _children.pop(proc.pid, None)
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except OSError:
        return False
    return True


def _kill_group(pid: int) -> None:
    with suppress(OSError):  # already gone
        os.killpg(pid, signal.SIGKILL)


@contextmanager
def whole() -> Iterator[None]:
    """A step that a signal must not cut in two (moving a class set into place): the stop waits for its end."""
    _holding[0] += 1
    try:
        yield
    finally:
        _holding[0] -= 1
        if not _holding[0] and _pending:
            _pending.pop()()


def stop_cleanly(stop: Callable[[], None]) -> None:
    """End subprocesses and remove every tracked temporary, then ``stop`` (after any :func:`whole` step)."""

    def run() -> None:
        _making.acquire()  # for good: no thread makes a temporary or a subprocess from here on
        groups = list(_children)
        for pid in groups:
            _kill_group(pid)
        for _ in range(200):  # until the killed TeX runs are gone (at most about 2 s), so none writes on
            if not any(_alive(pid) for pid in groups):
                break
            time.sleep(0.01)
        for _ in range(2):  # twice: a file a dying thread added while a folder was removed goes too
            for path in reversed(list(_temporaries)):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with suppress(OSError):
                        os.unlink(path)
        stop()

    if _holding[0]:
        _pending.append(run)
    else:
        run()
