"""Issue 12 §1: what the interpreter running gleitzeit can import, a task can import (read-only);
`sandbox.python` runs tasks in another environment. A real venv built with `python -m venv`, the
project and one extra package installed into it with pip, imported inside a task through that
venv's own `gleitzeit`."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.helpers.cli import REPO, cli_env

PKG = "gz_venv_probe"


def _tiny_wheel(folder: Path) -> Path:
    """A real (minimal) pure-python wheel, so pip installs it offline."""
    dist = f"{PKG}-1.0.dist-info"
    files = {f"{PKG}/__init__.py": "VALUE = 'from the venv'\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {PKG}\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{PKG}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture(scope="module")
def venv() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="gz-venv-"))
    folder.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder / "v")], check=True, env=env, timeout=300)
        pip = [str(folder / "v" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        build = Path(tempfile.mkdtemp(prefix="gz-venv-src-"))  # a copy: building never writes into the work tree
        shutil.copytree(REPO, build / "src", symlinks=True, ignore=shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", "build"))
        subprocess.run([*pip, str(build / "src"), str(_tiny_wheel(folder))], check=True, env=env, timeout=600,
                       capture_output=True)
        shutil.rmtree(build, ignore_errors=True)
        yield folder / "v"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _exec(gleitzeit: str, code: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([gleitzeit, "exec", "--json", code], cwd="/", env=cli_env(home, **env), capture_output=True,
                          text=True, timeout=120)


IMPORTS = f"""\
import sys, yaml, gleitzeit_core, {PKG}
try:
    open({PKG}.__file__, "a").write("# changed")
    ro = "writable"
except OSError as exc:
    ro = exc.strerror
result = {{"value": {PKG}.VALUE, "ro": ro, "python": sys.executable, "yaml": yaml.__file__}}
"""


def test_the_venvs_packages_are_importable_in_a_task(venv: Path, tmp_path: Path) -> None:
    res = _exec(str(venv / "bin" / "gleitzeit"), IMPORTS, tmp_path / "home")
    assert res.returncode == 0, res.stdout + res.stderr
    seen = __import__("json").loads(res.stdout)["result"]
    assert seen["value"] == "from the venv" and seen["ro"] in ("Read-only file system", "Permission denied")
    assert seen["yaml"].startswith(str(venv))  # the venv's own copy of gleitzeit's dependency
    installed = next(venv.glob(f"lib/python*/site-packages/{PKG}/__init__.py"))
    assert installed.read_text() == "VALUE = 'from the venv'\n"


def test_sandbox_python_runs_tasks_in_another_environment(venv: Path, tmp_path: Path) -> None:
    """The engine of this checkout, whose environment lacks the package, runs the task with the
    venv's interpreter when `sandbox.python` names it."""
    ours = shutil.which("gleitzeit") or pytest.fail("gleitzeit is not installed in the test environment")
    code = f"import sys, {PKG}\nresult = [{PKG}.VALUE, sys.executable]"
    without = _exec(ours, code, tmp_path / "home")
    assert without.returncode != 0 and f"No module named '{PKG}'" in without.stdout
    python = str(venv / "bin" / "python")
    res = _exec(ours, code, tmp_path / "home", GLEITZEIT_SANDBOX_PYTHON=python)
    assert res.returncode == 0, res.stdout + res.stderr
    assert __import__("json").loads(res.stdout)["result"] == ["from the venv", python]
