"""What ships: the wheel a cluster installs holds the platform, not its benchmarks, the local
stack (mock APIs, S3 server, runner) or the sample generator."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_built_wheel_holds_the_jobs_and_their_data_but_no_benchmark_mock_or_generator(tmp_path):
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", ".cdp", "dbt", "tests", "__pycache__", "*.egg-info", "build"),
    )
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [
        n
        for n in names
        if n.startswith(("bench/", "devstack/"))
        or "benchmark" in n
        or "splink" in n
        or "mock" in n
        or "generate" in n
        or "s3_server" in n
        or "runner" in n
    ]
    # the jobs and the data files they read beside their code
    assert {
        "spark_jobs/ingest/bronze.py",
        "spark_jobs/ingest/contracts/crm_contacts.yml",
        "spark_jobs/activation/syncs/crm_customers.yml",
        "dagster_project/definitions.py",
    } <= set(names)
