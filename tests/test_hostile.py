"""Hostile files and faults: nothing lost, nothing leaked, nothing hung.

One test (or a few) per class of the hostile corpus: `-o` onto special files and
onto the command's own inputs, exercises that delete only what derive wrote,
signals in the middle of a build, untrusted files (FIFOs, devices, symlinks,
oversize files, bad magic bytes, `..` escapes, contents never echoed), number,
formula, size and name bombs. Every CLI run has a generous subprocess timeout as
a hang guard; no test asserts on time otherwise.
"""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import IN_CI, need_tex

from derive.app.cli import main

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 180  # seconds: only a hang guard, never a measure


def derive(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "derive", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        stdin=subprocess.DEVNULL,
    )


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The one-line error of a refused command (exit 2, no traceback), after checking it says ``words``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr, proc.stderr[-2000:]
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and len(first) < 400, first
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    return proc.stderr


MAZUR_SHOW = None


def mazur_show() -> str:
    global MAZUR_SHOW
    if MAZUR_SHOW is None:
        MAZUR_SHOW = derive("show", "mazur").stdout
    return MAZUR_SHOW


def spec_with_file(folder: Path, name: str) -> Path:
    spec = folder / "s.toml"
    spec.write_text(
        f"loss = 'sse'\n[[layers]]\nsize = 3\nvalues_file = '{name}'\n[[layers]]\nsize = 1\nactivation = 'tanh'\n"
        "targets = [0.5]\n"
    )
    return spec


def one_neuron(folder: Path, activation: str) -> Path:
    spec = folder / "f.toml"
    spec.write_text(
        "loss = 'half_sse'\n[[layers]]\nnames = ['i1']\nvalues = [0.5]\n[[layers]]\nnames = ['o1']\n"
        f"activation = '{activation}'\nweights = [[0.3]]\nbias = 0.1\ntargets = [0.2]\n"
    )
    return spec


# --------------------------------------------------------------------------
# -o onto what is not a regular file, and onto the command's own inputs


def test_o_onto_a_regular_file_replaces_it_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o600)
    proc = derive("show", "mazur", "-o", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text() == mazur_show()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left beside it


def test_o_onto_a_symlink_writes_the_file_it_names_and_the_link_stays(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real.name)
    proc = derive("show", "mazur", "-o", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == "real.txt"
    assert real.read_text() == mazur_show()


def test_o_onto_a_fifo_writes_through_it_and_leaves_the_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    proc = derive("show", "mazur", "-o", str(fifo))
    thread.join(HANG_GUARD)
    assert proc.returncode == 0, proc.stderr
    assert received == [mazur_show().encode()]  # the reader got everything
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # and the FIFO is still a FIFO


def _device(tmp_path: Path) -> Path:
    """A character device node made in the test's own folder (the null device's numbers), never the system's."""
    node = tmp_path / "nulldev"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        with open(node, "wb"):
            pass
    except (PermissionError, OSError) as exc:
        if IN_CI:  # CI runs as root on a filesystem that allows nodes: the device class must be tested there
            pytest.fail(f"cannot make a device node in CI ({exc.strerror})")
        pytest.skip(
            f"cannot make or open a device node here ({exc.strerror}): needs root and a filesystem without nodev"
        )
    return node


def test_o_onto_a_device_writes_into_it_and_never_replaces_it(tmp_path):
    node = _device(tmp_path)
    proc = derive("show", "mazur", "-o", str(node))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nulldev"]


def test_o_onto_the_spec_is_refused_and_the_spec_survives(tmp_path):
    spec = tmp_path / "m.toml"
    text = derive("examples", "mazur").stdout
    spec.write_text(text)
    refused(derive("show", str(spec), "-o", str(spec)), "inputs", "would destroy")
    link = tmp_path / "other-name.toml"
    link.symlink_to(spec)
    refused(derive("export", str(spec), "-o", str(link)), "inputs")
    assert spec.read_text() == text


def test_lecture_o_onto_its_spec_is_refused_as_the_input_not_for_its_suffix(tmp_path):
    from derive.app.api import Model
    from derive.errors import DeriveError

    spec = tmp_path / "tc.toml"
    text = derive("examples", "tinyconv").stdout
    spec.write_text(text)
    (tmp_path / "link.toml").symlink_to(spec)
    for target in ("tc.toml", "link.toml"):
        err = refused(derive("lecture", "tc.toml", "--format", "html", "-o", target, cwd=tmp_path), "would destroy")
        assert err.startswith(f"error: {target}: is the spec this command reads") and "suffix" not in err
    with pytest.raises(DeriveError, match="inputs; writing it would destroy it"):
        Model.load(spec).lecture(spec, format="html")
    assert spec.read_text() == text


def test_fit_o_onto_its_own_data_set_is_refused_before_training(tmp_path):
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(data, X=rng.random((12, 3)), y=rng.integers(0, 3, 12))
    before = data.read_bytes()
    refused(derive("fit", "softmax", "--data", str(data), "-o", str(data), "--epochs", "1"), "inputs")
    assert data.read_bytes() == before


# --------------------------------------------------------------------------
# exercises -o DIR deletes only what derive recorded writing


def test_exercises_deletes_only_the_files_its_variants_toml_recorded(tmp_path):
    out = tmp_path / "class"
    first = derive("exercises", "mazur", "--students", "3", "--seed", "1", "--format", "html", "-o", str(out))
    assert first.returncode == 0, first.stderr
    mine = out / "student-07-sheet.html"  # the user's own file, named like a student's
    mine.write_text("my notes")
    notes = out / "student-01-notes.txt"
    notes.write_text("keep")
    second = derive("exercises", "mazur", "--students", "2", "--seed", "1", "--format", "html", "-o", str(out))
    assert second.returncode == 0, second.stderr
    assert mine.read_text() == "my notes" and notes.read_text() == "keep"
    assert not (out / "student-03-sheet.html").exists() and not (out / "student-03.toml").exists()  # derive's, stale
    assert (out / "student-02.toml").exists() and (out / "student-02-key.html").exists()


def test_exercises_refuses_to_replace_or_remove_its_own_input_spec(tmp_path):
    out = tmp_path / "class"
    first = derive("exercises", "mazur", "--students", "2", "--seed", "1", "--format", "html", "-o", str(out))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for student, students in (("student-01.toml", "2"), ("student-02.toml", "1")):  # replaced, or removed as stale
        args = ("exercises", str(out / student), "--students", students, "--seed", "2", "--format", "html")
        refused(derive(*args, "-o", str(out)), f"{student}: is one of this command's inputs")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --------------------------------------------------------------------------
# signals: a real subprocess stopped in the middle of a build


def _start(args: list[str], tmpdir: Path, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)}
    return subprocess.Popen(
        [sys.executable, "-m", "derive", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def _wait_for(condition, proc: subprocess.Popen) -> None:
    """Poll until ``condition()`` (the build is under way); the deadline is only a hang guard."""
    deadline = time.monotonic() + HANG_GUARD
    while not condition():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_during_a_lecture_leaves_no_temporary_folder(tmp_path, signum, status):
    need_tex()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start(["lecture", "mazur", "-o", "lecture.pdf"], tmpdir, tmp_path)
    _wait_for(lambda: any(p.name.startswith("derive-tex-") for p in tmpdir.iterdir()), proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == status, err.decode()[-2000:]
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]  # no lecture.pdf, no .lecture.pdf.*.tmp


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_exercises_leaves_no_staging_folder_and_no_half_written_files(tmp_path, signum, status):
    need_tex()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    out = tmp_path / "class"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    proc = _start(["exercises", "mazur", "--students", "4", "--seed", "3", "-o", str(out)], tmpdir, tmp_path)
    _wait_for(lambda: any(p.name.startswith("derive-tex-") for p in tmpdir.iterdir()), proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == status, err.decode()[-2000:]
    assert list(tmpdir.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_a_signal_during_exercises_into_a_new_folder_leaves_no_folder(tmp_path):
    need_tex()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = _start(["exercises", "mazur", "--students", "4", "--seed", "3", "-o", "class"], tmpdir, tmp_path)
    _wait_for(lambda: any(p.name.startswith("derive-tex-") for p in tmpdir.iterdir()), proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=HANG_GUARD)
    assert proc.returncode == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"] and list(tmpdir.iterdir()) == []


# --------------------------------------------------------------------------
# untrusted files: regular files only, sizes bounded, formats by magic bytes, confined, never echoed


@pytest.mark.parametrize("role", ["spec", "claims", "data", "values_file"])
def test_a_fifo_is_refused_not_read(tmp_path, role):
    fifo = tmp_path / "f.csv" if role == "data" else tmp_path / ("f.npy" if role == "values_file" else "f.txt")
    os.mkfifo(fifo)
    if role == "spec":
        proc = derive("show", str(fifo))
    elif role == "claims":
        proc = derive("check", "mazur", "--claims", str(fifo))
    elif role == "data":
        proc = derive("fit", "softmax", "--data", str(fifo))
    else:
        proc = derive("show", str(spec_with_file(tmp_path, fifo.name)))
    refused(proc, "FIFO", "regular files")


def test_a_device_is_refused_as_an_input(tmp_path):
    node = _device(tmp_path)
    refused(derive("check", "mazur", "--claims", str(node)), "character device")
    refused(derive("fit", "softmax", "--data", str(node)), "character device")


def test_an_oversize_file_is_refused_before_it_is_read(tmp_path):
    from derive.files import MAX_CLAIMS_BYTES

    claims = tmp_path / "claims.txt"
    with open(claims, "wb") as handle:  # sparse: the size is all that is checked
        handle.truncate(MAX_CLAIMS_BYTES + 1)
    refused(derive("check", "mazur", "--claims", str(claims)), "limit of 4,194,304 bytes")


def test_an_npy_header_claiming_a_trillion_entries_is_refused(tmp_path):
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64
    (tmp_path / "x.npy").write_bytes(data)
    refused(derive("show", str(spec_with_file(tmp_path, "x.npy"))), "array size limit")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("X.npy", data)
        z.writestr("y.npy", data)
    (tmp_path / "d.npz").write_bytes(archive.getvalue())
    refused(derive("fit", "softmax", "--data", str(tmp_path / "d.npz")), "array size limit")


def test_a_small_npz_that_decompresses_past_the_limit_is_refused_before_decompressing(tmp_path, monkeypatch):
    import derive.fit.data

    monkeypatch.setattr(derive.fit.data, "MAX_DATA_BYTES", 1_000_000)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, X=np.zeros((2000, 100)), y=np.zeros(2000))  # 1.6 MB of zeros in a few kB
    assert path.stat().st_size < 50_000
    result = CliRunner().invoke(main, ["fit", "softmax", "--data", str(path)])
    assert result.exit_code == 2 and "decompresses to" in result.stderr and "limit" in result.stderr, result.output


def test_formats_are_told_by_magic_bytes_not_suffix(tmp_path):
    npy = io.BytesIO()
    np.save(npy, np.ones((4, 3)))
    (tmp_path / "d.npz").write_bytes(npy.getvalue())  # an .npy named .npz
    refused(derive("fit", "softmax", "--data", str(tmp_path / "d.npz")), "single .npy array")
    (tmp_path / "empty.csv").write_bytes(b"")
    refused(derive("fit", "softmax", "--data", str(tmp_path / "empty.csv")), "empty")
    (tmp_path / "x.npy").write_text("0.1 0.2 0.3\n")  # text named .npy: read as text
    assert derive("show", str(spec_with_file(tmp_path, "x.npy"))).returncode == 0
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "real.csv", X=rng.random((12, 3)), y=rng.integers(0, 3, 12))  # an archive named .csv
    os.rename(tmp_path / "real.csv.npz", tmp_path / "real.csv")
    proc = derive(
        "fit", "softmax", "--data", str(tmp_path / "real.csv"), "--epochs", "1", "-o", str(tmp_path / "p.npz")
    )
    assert proc.returncode == 0, proc.stderr


def test_a_file_named_in_a_spec_stays_in_the_specs_folder(tmp_path):
    (tmp_path / "outside.txt").write_text("0.1 0.2 0.3\n")
    folder = tmp_path / "specs"
    folder.mkdir()
    refused(derive("show", str(spec_with_file(folder, "../outside.txt"))), "outside the spec's folder")
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    spec = spec_with_file(folder, "link.txt")
    refused(derive("show", str(spec)), "outside the spec's folder", "--allow-outside")
    assert derive("--allow-outside", "show", str(spec)).returncode == 0
    (folder / "inside.txt").write_text("0.1 0.2 0.3\n")
    assert derive("show", str(spec_with_file(folder, "inside.txt"))).returncode == 0


def test_a_spec_from_standard_input_reads_its_files_from_the_current_folder(tmp_path):
    (tmp_path / "x.txt").write_text("0.1, 0.2, 0.3\n")
    text = spec_with_file(tmp_path, "x.txt").read_text()
    proc = subprocess.run(
        [sys.executable, "-m", "derive", "show", "-"],
        input=text,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0.2" in proc.stdout


SECRET = "hunter2-secret-line"


@pytest.mark.parametrize(
    "line",
    [f"root:x:0:0:{SECRET}:/root:/bin/bash", f"token = {SECRET}", f"{SECRET}", f"w5 = 0.4 {SECRET}"],
)
def test_errors_never_echo_a_files_contents(tmp_path, line):
    secret = tmp_path / "passwd"
    secret.write_text(f"# header\n{line}\n")
    link = tmp_path / "claims.txt"
    link.symlink_to(secret)
    err = refused(derive("check", "mazur", "--claims", str(link)), "claims.txt:2")
    assert SECRET not in err
    for data in (f"1,2,3,0\n{SECRET},2,3,1\n", f"1,2,3,0\n1,2,{SECRET},1\n"):
        (tmp_path / "d.csv").write_text(data)
        err = refused(derive("fit", "softmax", "--data", str(tmp_path / "d.csv")), "line 2", "not a number")
        assert SECRET not in err
    (tmp_path / "v.txt").write_text(f"0.1 {SECRET} 0.3\n")
    err = refused(derive("show", str(spec_with_file(tmp_path, "v.txt"))), "line 1", "item 2")
    assert SECRET not in err


def test_a_csv_byte_order_mark_keeps_the_first_row(tmp_path):
    rows = ["0.1,0.2,0.3,0", "0.4,0.5,0.6,1", "0.7,0.8,0.9,2", "0.2,0.1,0.0,1"]
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode() + b"\n")
    from derive.fit.data import load_data

    data = load_data(str(path), 3, 3)
    assert data.rows == 4 and data.X[0].tolist() == [0.1, 0.2, 0.3]


def test_complex_numbers_and_0d_labels_are_clear_errors(tmp_path):
    np.savez(tmp_path / "c.npz", X=np.ones((4, 3)) + 1j, y=np.zeros(4))
    err = refused(derive("fit", "softmax", "--data", str(tmp_path / "c.npz")), "complex")
    assert "Warning" not in err
    np.savez(tmp_path / "z.npz", X=np.ones((4, 3)), y=np.array(1.0))
    refused(derive("fit", "softmax", "--data", str(tmp_path / "z.npz")), "labels of shape ()")


def test_one_hot_targets_for_many_classes_take_rows_times_classes_not_classes_squared(tmp_path):
    import tracemalloc

    from derive.fit.data import load_data

    path = tmp_path / "wide.npz"
    np.savez(path, X=np.ones((10, 3)), y=np.arange(10) * 2999)
    tracemalloc.start()
    data = load_data(str(path), 3, 30_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert data.T.shape == (10, 30_000) and data.T[9, 26_991] == 1 and data.T.sum() == 10
    assert peak < 50 * 2**20  # np.eye(30000) would be 7.2 GB


# --------------------------------------------------------------------------
# claims: digits, exponents, steps, line ends


def test_claims_of_up_to_50_digits_are_judged_and_longer_ones_refused():
    fifty = "0.75136506955231634581934380934478963450894700000012"
    assert len(fifty.replace("0.", "", 1).lstrip("0")) == 50
    proc = derive("check", "mazur", f"out_o1={fifty}")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    refused(derive("check", "mazur", f"out_o1={fifty}2"), "51 significant digits", "limit is 50")
    proc = derive("check", "mazur", "out_o1=0." + "7" * 29)  # 29 digits crashed decimal's 28-digit context
    assert proc.returncode == 1 and "WRONG" in proc.stdout, proc.stderr


@pytest.mark.parametrize("number", ["1e9999999", "1e-9999999", "1e401", "7e-999"])
def test_claim_exponents_are_bounded(number):
    refused(derive("check", "mazur", f"E={number}"), "claim exponent limit")


def test_claim_steps_are_bounded_and_the_readme_steps_still_work():
    refused(derive("check", "mazur", "E@" + "9" * 5000 + "=1"), "the step limit")
    refused(derive("check", "mazur", "E@10000000=1"), "at most 100,000 updates")
    proc = derive("check", "mazur", "E@10000=0.0000351085", "E@9999=0.0000351085")
    assert proc.returncode == 1 and "E@10000" in proc.stdout  # the README's example: one wrong, one ok


def test_only_a_newline_ends_a_claim_line(tmp_path):
    claims = tmp_path / "c.txt"
    claims.write_text("out_o1 = 0.75136507\n# w5 = 1\fw5 = 99\n# note\u2028w6 = 99\n# x\x1cw7 = 99\n", encoding="utf-8")
    proc = derive("check", "mazur", "--claims", str(claims))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 claim" in proc.stdout and "w5" not in proc.stdout


# --------------------------------------------------------------------------
# formulas: the cost bounded by the expression, not by a clock


@pytest.mark.parametrize(
    ("activation", "words"),
    [
        ("log(0)*x", "constant log(0)"),
        ("x + sqrt(0-1)", "constant sqrt(-1)"),
        ("exp(" * 10 + "x" + ")" * 10, "growth nesting limit"),
        ("x*exp(-exp(exp(12)))", "constant limit"),
        ("tanh(" * 12 + "x" + ")" * 12, "expansion limit"),
    ],
)
def test_formula_bombs_are_refused_naming_the_limit(tmp_path, activation, words):
    spec = one_neuron(tmp_path, activation)
    for command in (["grad", str(spec), "--all"], ["export", str(spec)]):
        refused(derive(*command), words, "layers[1].activation")


def test_formulas_within_the_limits_still_work(tmp_path):
    for activation in ("exp(exp(exp(x)))/1000", "tanh(tanh(tanh(tanh(x))))", "x*exp(-exp(2))", "(1 + x)**10/1000"):
        proc = derive("export", str(one_neuron(tmp_path, activation)))
        assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# sizes


def test_400_layers_of_one_neuron_need_no_deep_recursion(tmp_path):
    lines = ["loss = 'half_sse'", "[[layers]]", "size = 1", "values = [0.5]"]
    lines += ["[[layers]]\nsize = 1\nactivation = 'sigmoid'"] * 400 + ["targets = [0.3]"]
    spec = tmp_path / "deep.toml"
    spec.write_text("\n".join(lines) + "\n")
    for command in (
        ["grad", str(spec), "--all"],
        ["grad", str(spec), "w2_1_1"],
        ["check", str(spec), "dE/dw2_1_1=0.1", "E@3=0.1", "a2_1=0.3"],
        ["train", str(spec), "--steps", "5"],
    ):
        proc = derive(*command)
        assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, (command, proc.stderr[-1500:])
    shown = " ".join(derive("grad", str(spec), "w2_1_1", "--closed-form").stdout.split())  # lines fold at 100
    assert "limit 64 layers" in shown


def test_latex_beyond_the_size_limit_is_refused_before_tex_runs(tmp_path):
    from derive.errors import DeriveError
    from derive.lecture.texbuild import MAX_TEX_BYTES, compile_pdf

    source = "\\documentclass{article}\\begin{document}\n" + "x " * (MAX_TEX_BYTES // 2) + "\\end{document}\n"
    with pytest.raises(DeriveError, match="TeX size limit"):
        compile_pdf(source, tmp_path / "big.pdf", "en")
    assert list(tmp_path.iterdir()) == []


def test_a_spec_past_the_size_limit_is_refused_before_it_is_read(tmp_path):
    spec = tmp_path / "big.toml"
    with open(spec, "wb") as handle:  # sparse: the size is all that is checked
        handle.truncate(16 * 2**20 + 1)
    refused(derive("show", str(spec)), "limit of 16,777,216 bytes", "file size limit")


@pytest.mark.parametrize(
    "text",
    [
        "x = [" + "0," * 1_100_000 + "0]\n",  # 2.2 MB of zeros: 31 million of them took 5.8 GB
        "x = [" + "{}," * 1_100_000 + "{}]\n",
        "".join(f"k{i}=0\n" for i in range(1_100_000)),
    ],
    ids=["numbers", "tables", "keys"],
)
def test_a_spec_of_too_many_toml_items_is_refused_before_it_is_parsed(text, monkeypatch):
    import tracemalloc

    from derive.errors import SpecError
    from derive.spec import reading

    def never(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(reading.tomllib, "loads", never)
    monkeypatch.setattr(reading, "_fast_toml", never)
    tracemalloc.start()
    with pytest.raises(SpecError, match=r"about [12],[\d,]+ TOML items.*the limit is 1,000,000 \(spec item limit\)"):
        reading.parse_spec(text, "big.toml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20


def test_a_dotted_key_of_30000_parts_is_refused_before_tomllib_takes_its_square(tmp_path):
    spec = tmp_path / "dots.toml"
    spec.write_text("a" + ".a" * 30_000 + " = 1\n")  # 60 kB: tomllib took 14 s, 100,000 parts ran out of memory
    refused(derive("show", str(spec)), "a dotted key 30,001 parts deep", "TOML nesting limit")
    spec.write_text("[" + ".".join(["t"] * 40) + "]\n")
    refused(derive("show", str(spec)), "a dotted key 40 parts deep", "TOML nesting limit")


def test_toml_nested_500_deep_is_refused(tmp_path):
    spec = tmp_path / "nest.toml"
    spec.write_text("x = " + "[" * 500 + "]" * 500 + "\n")
    refused(derive("show", str(spec)), "nested 500 deep", "TOML nesting limit")


def test_steps_are_bounded_everywhere(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(derive("examples", "mazur").stdout.replace("steps = 10000", "steps = 10000000"))
    refused(derive("lecture", str(spec), "-o", str(tmp_path / "l.html")), "training.steps", "step limit")
    for command in ("train", "lecture"):
        proc = derive(command, "mazur", "--steps", "10000000", "-o", str(tmp_path / "x.html"))
        assert proc.returncode == 2 and "10000000" in proc.stderr and "Traceback" not in proc.stderr
    big = tmp_path / "big.toml"
    big.write_text(derive("new", "784-256-256-10").stdout)
    refused(derive("train", str(big), "--steps", "5000"), "training work limit")


def test_a_tiny_spec_with_nine_million_parameters_is_refused_by_a_memory_estimate(tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text(
        "loss='half_sse'\n[[layers]]\nsize=3000\nvalues='random'\n[[layers]]\nsize=3000\nactivation='relu'\n"
        "[[layers]]\nsize=10\ntargets='random'\n"
    )
    assert len(spec.read_bytes()) < 200
    refused(derive("grad", str(spec), "w2_1_1"), "9,003,000 weights and biases", "memory limit")


HEAD = "name = 'h'\nloss = 'half_sse'\n[[layers]]\n"
TAIL = "[[layers]]\nsize = 1\nactivation = 'sigmoid'\ntargets = [1.0]\n"
CONV = "[[layers]]\nkind = 'conv2d'\nchannels = {c}\nkernel = 1\npadding = {p}\nactivation = 'relu'\n"
HUGE_LAYERS = {
    "padding 4096 around 2×2": HEAD + "shape = [1, 2, 2]\n" + CONV.format(c=1, p=4096) + TAIL,
    "4096 channels of 300×300": HEAD + "shape = [1, 300, 300]\n" + CONV.format(c=4096, p=0) + TAIL,
    "conv1d of 4096 channels": HEAD
    + "shape = [1, 4096]\n[[layers]]\nkind = 'conv1d'\nchannels = 4096\nkernel = 1\nactivation = 'relu'\n"
    + TAIL,
    "dense after 100,000 inputs": HEAD + "size = 100000\n[[layers]]\nsize = 1\nactivation = 'relu'\n" + TAIL,
}


@pytest.mark.parametrize("text", HUGE_LAYERS.values(), ids=HUGE_LAYERS.keys())
def test_a_layer_past_the_neuron_limit_is_refused_from_its_geometry_before_its_names_are_made(text):
    import tracemalloc

    from derive.errors import SpecError
    from derive.spec.reading import parse_spec

    tracemalloc.start()
    with pytest.raises(SpecError, match=r"layers\[1\]: .* neurons up to this layer.*\(neuron limit\)"):
        parse_spec(text, "h.toml")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20  # the names of 67 million neurons took 4.6 GB


def test_a_padded_conv_past_the_neuron_limit_is_refused_under_a_memory_limit(tmp_path):
    spec = tmp_path / "pad.toml"
    spec.write_text(HUGE_LAYERS["padding 4096 around 2×2"])
    limit = "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
    limit += "sys.argv = ['derive', 'show', sys.argv[1]]; runpy.run_module('derive', run_name='__main__')"
    proc = subprocess.run(
        [sys.executable, "-c", limit, str(spec)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    refused(proc, "1×8194×8194 = 67,141,636", "neuron limit")


def test_784_256_256_10_still_works(tmp_path):
    spec = tmp_path / "mnist.toml"
    spec.write_text(derive("new", "784-256-256-10").stdout)
    proc = derive("grad", str(spec), "w4_3_7")
    assert proc.returncode == 0, proc.stderr
    assert "∂E/∂w4_3_7" in proc.stdout


# --------------------------------------------------------------------------
# names


def test_a_layer_key_of_5000_digits_is_an_unknown_name_not_a_crash():
    err = refused(derive("grad", "mazur", "W" + "1" * 5000), "unknown parameter")
    assert len(err.splitlines()[0]) < 200


def test_a_spec_file_name_that_is_not_utf8_makes_a_web_page(tmp_path):
    text = derive("examples", "mazur").stdout
    name = os.fsdecode(b"m\xff\xfe.toml")
    (tmp_path / name).write_text(text)
    out = tmp_path / "l.html"
    proc = derive("lecture", name, "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = out.read_bytes().decode("utf-8")  # strict: no surrogate escaped into the page
    assert "m\ufffd\ufffd.toml" in page


# --------------------------------------------------------------------------
# messages name the entry that is wrong, and what is wrong with it

MAPS = "[[layers]]\nshape = {shape}\nvalues = {values}\n"
CONV_2X2 = "[[layers]]\nkind = 'conv2d'\nchannels = 1\nkernel = 2\nactivation = 'relu'\nweights = {weights}\n"
RNN_2 = "[[layers]]\nkind = 'rnn'\nsize = 2\nactivation = 'tanh'\nweights = [[0.1], [0.2]]\nrecurrent_weights = {u}\n"
MESSAGES = {
    "conv after rnn": (
        MAPS.format(shape="[3, 1]", values="'random'")
        + RNN_2.format(u="[[0.1, 0.2], [0.3, 0.4]]")
        + CONV_2X2.format(weights="[[[[0.1, 0.2], [0.3, 0.4]]]]"),
        "layers[2].kind: a conv2d layer after an rnn layer (its last state is a flat vector)",
    ),
    "shape too big": (MAPS.format(shape="[1, 100000, 100000]", values="'random'"), "layers[0].shape[1]: H (height)"),
    "shape negative": (MAPS.format(shape="[1, -4, 4]", values="'random'"), "shape[1]: H (height) must be a whole"),
    "shape zero": (MAPS.format(shape="[1, 0, 4]", values="'random'"), "layers[0].shape[1]: H (height) must be"),
    "shape float": (MAPS.format(shape="[1, 4.0, 4]", values="'random'"), "got 4.0: not a whole number"),
    "rnn shape zero": (
        MAPS.format(shape="[0, 2]", values="'random'") + RNN_2.format(u="[[0.1, 0.2], [0.3, 0.4]]"),
        "layers[0].shape[0]: T (time steps) must be a whole number from 1 to 4096, got 0",
    ),
    "values nested too deep": (
        MAPS.format(shape="[1, 2, 2]", values="[[[0.0, [0.1]], [0.2, 0.3]]]"),
        "layers[0].values[0][0][1]: expected a number, got a list of 1: nested one level too deep",
    ),
    "nan in values": (
        MAPS.format(shape="[1, 2, 2]", values="[[[0.0, 0.1], [nan, 0.3]]]"),
        "layers[0].values[0][1][0]: expected a finite number, got nan",
    ),
    "weights nested too deep": (
        MAPS.format(shape="[1, 4, 4]", values="'random'")
        + CONV_2X2.format(weights="[[[[[0.1], [0.2]], [[0.3], [0.4]]]]]"),
        "layers[1].weights[0][0][0][0]: expected a number, got a list of 1",
    ),
    "weights nested too shallow": (
        MAPS.format(shape="[1, 4, 4]", values="'random'") + CONV_2X2.format(weights="[[0.1, 0.2], [0.3, 0.4]]"),
        "layers[1].weights: expected 1×1×2×2 weights ([out][in][kh][kw], torch's layout), got a list of 2 nested 2 deep",
    ),
    "nan in weights": (
        MAPS.format(shape="[1, 4, 4]", values="'random'") + CONV_2X2.format(weights="[[[[0.1, 0.2], [0.3, nan]]]]"),
        "layers[1].weights[0][0][1][1]: expected a finite number, got nan",
    ),
    "flat recurrent weights": (
        MAPS.format(shape="[3, 1]", values="'random'") + RNN_2.format(u="[0.1, 0.2, 0.3, 0.4]"),
        "layers[1].recurrent_weights: expected a 2×2 matrix (recurrent_weights[j][k] into unit j from the previous "
        "state's unit k), got a flat list of 4, not rows",
    ),
    "unknown kind": (
        MAPS.format(shape="[3, 1]", values="'random'") + "[[layers]]\nkind = 'lstm'\nsize = 2\n",
        "layers[1].kind: unknown layer kind 'lstm'\n  layer kinds: dense, conv1d",
    ),
}


@pytest.mark.parametrize("what", list(MESSAGES))
def test_spec_errors_name_the_wrong_entry_and_the_problem(what):
    from derive.errors import SpecError
    from derive.spec.reading import parse_spec

    body, words = MESSAGES[what]
    tail = "[[layers]]\nsize = 1\nactivation = 'sigmoid'\ntargets = [1.0]\n"
    with pytest.raises(SpecError) as caught:
        parse_spec("name = 'h'\nloss = 'half_sse'\n" + body + tail, "h.toml")
    assert words in str(caught.value), str(caught.value)
