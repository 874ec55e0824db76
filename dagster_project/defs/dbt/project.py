"""The dbt project location, importable without building assets (which need the manifest)."""

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from spark_jobs.settings import REPO_ROOT

dbt_project = DbtProject(project_dir=REPO_ROOT / "dbt")


def dbt_executable() -> str:
    """The dbt installed beside this interpreter (the venv's), so no PATH set-up is needed."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def prepare_manifest() -> None:
    """Run ``dbt parse`` so dbt/target/manifest.json matches the models (./cdp does it first)."""
    # dagster-dbt's preparer looks for `dbt` on PATH only; point it at the venv's.
    executable = Path(dbt_executable())
    if executable.is_absolute() and shutil.which("dbt") != str(executable):
        os.environ["PATH"] = f"{executable.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    dbt_project.preparer.prepare(dbt_project)
