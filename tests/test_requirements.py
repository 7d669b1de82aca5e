"""requirements.txt pins every third-party distribution that the project and its tests import.

A module missing from it works here, where it happens to be installed, and fails on a fresh
install (`pip install -r requirements.txt` in a new virtual environment, as .ci/run does).
"""
import ast
import importlib.metadata
import re
import subprocess
import sys

import pytest

from tests.scripts import ROOT

OWN_PACKAGES = {"part1", "part2", "part3", "report", "tests"}
# Distributions needed although no file imports them, and why.
NEEDED_WITHOUT_IMPORT = {
    "scipy": "networkx imports it lazily for the Laplacian matrices of part 3",
    "pytest-xdist": "pytest.ini's addopts run the suite in two processes (-n 2)",
    "pytest-timeout": "pytest.ini's timeout = 120",
}


def normalized(name):
    """A distribution's name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements_text):
    """The distributions pinned to one version (name==version) in a requirements file."""
    names = set()
    for line in requirements_text.splitlines():
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?==\S+", line.split("#")[0].strip())
        if match:
            names.add(normalized(match.group(1)))
    return names


def project_files():
    """The project's and the tests' .py files: not hidden folders, mutmut's copy or a venv in the clone."""
    for path in sorted(ROOT.rglob("*.py")):
        folders = path.relative_to(ROOT).parts[:-1]
        if any(part.startswith(".") or part == "mutants" for part in folders):
            continue
        if any((ROOT.joinpath(*folders[:i + 1]) / "pyvenv.cfg").exists() for i in range(len(folders))):
            continue
        yield path


def imported_modules(source):
    """The top-level names of every absolute import in a module, at any depth (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def third_party_imports():
    """{module: files importing it} for every module neither in the standard library nor ours."""
    found = {}
    for path in project_files():
        for name in imported_modules(path.read_text(encoding="utf-8")):
            if name not in sys.stdlib_module_names and name not in OWN_PACKAGES:
                found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def test_pinned_reads_names_and_skips_comments_and_the_editable_install():
    text = "# a comment\ntorch==2.13.0\nPyTest_Timeout==2.4.0  # why\nnumpy>=2\nfoo[bar]==1\n-e .\n"
    assert pinned(text) == {"torch", "pytest-timeout", "foo"}


def test_imported_modules_finds_lazy_imports_and_leaves_out_relative_ones():
    source = "import os.path, numpy as np\nfrom a.b import c\nfrom . import d\ndef f():\n    import scipy.sparse\n"
    assert imported_modules(source) == {"os", "numpy", "a", "scipy"}


def test_every_imported_distribution_is_pinned_in_requirements_txt():
    assert "networkx" in third_party_imports()  # the scan sees the project's files
    requirements = pinned((ROOT / "requirements.txt").read_text())
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module, files in sorted(third_party_imports().items()):
        distributions = {normalized(d) for d in providers.get(module, [])}
        if not distributions:
            missing.append(f"{module} (no installed distribution provides it; imported by {files[0]})")
        elif not distributions & requirements:
            missing.append(f"{module} from {' or '.join(sorted(distributions))} (imported by {files[0]})")
    missing += [f"{name} ({why})" for name, why in NEEDED_WITHOUT_IMPORT.items()
                if normalized(name) not in requirements]
    if missing:
        pytest.fail("not pinned in requirements.txt: " + "; ".join(missing))


def test_no_project_file_points_outside_the_clone():
    """Beside a user's clone there is no ../shared: only tests and .ci/run may use it. A recorded
    machine.txt keeps the command that was run, as it was run."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = [path for path in tracked.splitlines()
                 if not path.startswith(("tests/", ".ci/")) and not path.endswith(("machine.txt", ".pdf", ".png"))
                 and (ROOT / path).is_file() and re.search(r"\.\./shared|shared/(docs|data)",
                                                           (ROOT / path).read_text(errors="replace"))]
    assert offenders == []
