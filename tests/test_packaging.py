"""The package as a user gets it: sdist contents, tests runnable from the sdist, license and typing markers."""

import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SetuptoolsDeprecationWarning" not in proc.stderr, proc.stderr
    assert "is absent from the `packages` configuration" not in proc.stdout + proc.stderr
    (archive,) = dist.glob("*.tar.gz")
    return archive


def _tracked(folder: str) -> set[str]:
    """Files under ``folder`` that belong to the project (git's view when there is a repository)."""
    proc = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        return set(proc.stdout.split())
    return {
        str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_sdist_holds_everything_its_tests_need(sdist):
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = _tracked("tests") | _tracked("templates") | {"LICENSE", "README.md", "pyproject.toml", "derive/py.typed"}
    missing = sorted(needed - names)
    assert not missing, f"missing from the sdist: {missing}"
    assert "tests/conftest.py" in names and "tests/oracles.py" in names
    assert any(n.startswith("tests/golden/") for n in names)


def test_pytest_passes_from_an_unpacked_sdist(sdist, tmp_path):
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp_path, filter="data")
    (unpacked,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # the unpacked tree's own derive package comes first; a representative slice of the suite runs there
    env = {"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mazur.py", "tests/test_golden.py"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import derive; print(derive.__file__)"],
        cwd=unpacked,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip().startswith(str(unpacked))


def test_license_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "derive" / "py.typed").exists()


def test_the_package_description_shows_no_relative_images():
    """The index page (PyPI) has no repository beside it: its description links no local images."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / project["readme"]).read_text()
    assert "](docs/" not in text and 'src="docs/' not in text


def _dry_run(target: str) -> str:
    proc = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_make_demo_installs_only_the_package_and_make_test_adds_the_test_tools():
    demo = _dry_run("demo")
    installs = [line for line in demo.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs == ["$(BIN)/python -m pip install --quiet -e '.[fast]'".replace("$(BIN)", ".venv/bin")]
    assert "test" not in installs[0] and "torch" not in demo and "texlive-xetex" not in demo
    assert "derive lecture mazur -o output/mazur.pdf" in demo
    test = _dry_run("test")
    assert "-e '.[fast,test,bench]'" in test and "torch==2.13.0" in test and "pytest" in test
    # the bench extra brings JAX's CPU wheels (no CUDA) and threadpoolctl
    bench = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    assert any(dep.startswith("jax[cpu]") for dep in bench) and any(dep.startswith("threadpoolctl") for dep in bench)


def test_the_distribution_has_a_name_of_its_own_and_every_install_hint_names_it():
    """The index's `derive` is another project: hints name this distribution (or the clone's editable install)."""
    from derive.install import DISTRIBUTION, install_hint

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION != "derive"
    assert project["scripts"]["derive"] == "derive.app.cli:main"  # the command keeps its name
    assert f"'{DISTRIBUTION}[data]'" in install_hint("data") and "-e '.[data]'" in install_hint("data")
    texts = [ROOT / "README.md", ROOT / "docs" / "package.md", *(ROOT / "derive").rglob("*.py")]
    wrong = [str(p.relative_to(ROOT)) for p in texts if "derive[" in p.read_text(encoding="utf-8")]
    assert not wrong, f"install hints naming the index's unrelated `derive`: {wrong}"
    assert "pip install derive\n" not in (ROOT / "docs" / "package.md").read_text()
