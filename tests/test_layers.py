"""The code's shape, checked: no import circle and no upward import (import-linter contracts in
pyproject.toml), and the ruff rules of pyproject.toml. A planted upward import must break them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """import-linter with the project's contracts over the package found under `src`."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True))")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_no_import_circle_and_no_upward_import():
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_planted_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(ROOT / "src" / "wqmix", tmp_path / "wqmix", ignore=shutil.ignore_patterns("__pycache__"))
    losses = tmp_path / "wqmix" / "losses.py"
    losses.write_text(losses.read_text() + "\n\ndef _planted():\n    from wqmix.train import Trainer\n    return Trainer\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "wqmix.losses -> wqmix.train" in result.stdout, result.stdout


def test_ruff():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "--no-cache", "src", "tests", "benchmarks", "examples", "tools"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
