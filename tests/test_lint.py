"""The linters CI enforces: ruff (lint and format) on the Python, sqlfluff on the dbt models.
Configuration: [tool.ruff] in pyproject.toml, dbt/.sqlfluff. To fix locally:
``ruff format . && ruff check --fix .`` and ``cd dbt && sqlfluff fix models``."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_python_passes_ruff(command):
    result = run(str(BIN / "ruff"), *command)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_dbt_models_pass_sqlfluff():
    models = sorted((ROOT / "dbt" / "models").rglob("*.sql"))
    result = run(str(BIN / "sqlfluff"), "lint", "models", "--processes", "2", "--format", "json", cwd=ROOT / "dbt")
    linted = json.loads(result.stdout)
    problems = [
        (f["filepath"], v["start_line_no"], v["code"], v["description"]) for f in linted for v in f["violations"]
    ]
    assert result.returncode == 0 and not problems, problems[:30] or result.stderr[-2000:]
    assert len(linted) == len(models) >= 50  # every model was rendered and linted, none skipped
