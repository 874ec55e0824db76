"""Shared fixtures: one SparkSession for the whole test session, small and Delta-enabled."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devstack.s3_server import free_port
from spark_jobs.settings import Settings
from spark_jobs.spark import table_names

# The tests' data is tiny: their Spark drivers (the session below, the pipeline runs' services)
# evaluate plans interpreted rather than compile Java code for every query (README,
# CDP_LOCAL_CODEGEN). A value set by hand still wins.
os.environ.setdefault("CDP_LOCAL_CODEGEN", "false")


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("cdp-home")
    return Settings.from_env({"CDP_HOME": str(home), "CDP_LOCAL_CODEGEN": os.environ["CDP_LOCAL_CODEGEN"]})


@pytest.fixture(scope="session")
def spark(test_settings: Settings):
    """local[2], 2 shuffle partitions, UTC, UI off, Delta on; an in-memory catalog so unit tests
    never contend for a Derby metastore with the end-to-end pipeline's Spark processes."""
    from spark_jobs.spark import build_session

    warehouse = test_settings.home / "unit-warehouse"
    session = build_session(
        test_settings,
        "cdp-tests",
        overrides={
            "spark.master": "local[2]",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.catalogImplementation": "in-memory",
            "spark.sql.warehouse.dir": warehouse.as_uri(),
        },
    )
    for database in ("bronze", "silver", "gold"):
        session.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    yield session
    session.stop()


@pytest.fixture
def s3(tmp_path, monkeypatch):
    """A local S3-compatible server (real HTTP) with the bucket ``exports``, and boto3's
    credentials for it in the environment."""
    from devstack.s3_server import LOCAL_CREDENTIALS, LocalS3Server

    with LocalS3Server(tmp_path / "s3-data") as server:
        server.ensure_bucket("exports")
        for key, value in LOCAL_CREDENTIALS.items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def fresh_database(spark):
    """Drop the tables a test wrote to the shared catalog, so tests stay independent."""
    yield spark
    for database in ("bronze", "silver", "gold"):
        for table in table_names(spark, database):
            spark.sql(f"DROP TABLE IF EXISTS {database}.{table}")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """One process: fast unit tests first, the slow end-to-end runs last. Several (``./cdp test``
    runs 3 pytest-xdist workers with ``--no-loadscope-reorder``, so they take work in this
    order): longest first, so that the end holds only short tests to share out. The local
    end-to-end module first (one group: its tests share its runs), then the other tests that
    start Spark services or clusters of their own, then the tests that use the session's Spark,
    then the rest."""
    parallel = hasattr(config, "workerinput")  # collection happens in the xdist workers only
    for item in items:
        if item.get_closest_marker("e2e") is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("e2e"))
    if parallel:
        items.sort(key=_scheduling_rank)
    else:
        items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def _group_of(item) -> str | None:
    group = item.get_closest_marker("xdist_group")
    return (group.args[0] if group.args else group.kwargs.get("name")) if group else None


def _scheduling_rank(item) -> int:
    """0: the critical path; 1: other groups (own Spark services, a cluster); 2: Terraform (an
    apply to the AWS stand-in, checkov); 3: tests on the session's Spark; 4: plain Python."""
    group = _group_of(item)
    if group == CRITICAL_PATH_GROUP:
        return 0
    if group is not None:
        return 1
    if item.get_closest_marker("terraform") is not None:
        return 2
    return 3 if "spark" in item.fixturenames else 4


CRITICAL_PATH_GROUP = "e2e"  # the local end-to-end module: its pipeline runs follow one another
LOWERED_PRIORITY = 10


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures start their JVMs and servers
def pytest_runtest_setup(item):
    """Under pytest-xdist, the local end-to-end module is the suite's critical path: its four
    pipeline runs follow one another while the other workers share the same 2 cores. A worker
    about to run anything else lowers its CPU priority once (os.nice; the Spark JVMs, servers
    and subprocesses it starts inherit it), so the end-to-end runs get the cores first and the
    rest fills the time they leave idle. Nothing is skipped: every test still runs."""
    config = item.config
    if not hasattr(config, "workerinput") or getattr(config, "_cdp_priority_lowered", False):
        return
    if _group_of(item) != CRITICAL_PATH_GROUP:
        os.nice(LOWERED_PRIORITY)
        config._cdp_priority_lowered = True


IMAGE = re.compile(r"^!\[(?P<title>[^\]]*)\]\(data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)\)$")


def png_of(markdown: str):
    """(title, image, size in bytes) of a chart's Markdown (spark_jobs/plots.py); fails unless it
    is one embedded, valid PNG."""
    from PIL import Image

    match = IMAGE.match(markdown)
    assert match, markdown[:80]
    data = base64.b64decode(match["data"], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.verify()  # raises on a truncated or corrupt file
    return match["title"], Image.open(io.BytesIO(data)), len(data)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def aws_stand_in(tmp_path_factory):
    """The local AWS stand-in (tests/aws_stand_in.py: moto's server, adapted where it differs from
    AWS) on a free port: its endpoint URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("aws") / "stand-in.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("aws_stand_in.py")), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            break
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the AWS stand-in did not start on {endpoint}:\n{log.read_text()}")
            time.sleep(0.3)
    yield endpoint
    process.terminate()
    process.wait(timeout=30)


FAILURE_REPORTS = "CDP_TEST_FAILURE_REPORTS"


OWN_FAILURE_REPORTS = pytest.StashKey[str]()


def pytest_configure(config):
    """The controller makes a folder for failure reports; xdist's workers inherit its path."""
    if not hasattr(config, "workerinput") and FAILURE_REPORTS not in os.environ:
        os.environ[FAILURE_REPORTS] = tempfile.mkdtemp(prefix="cdp-test-failures-")
        config.stash[OWN_FAILURE_REPORTS] = os.environ[FAILURE_REPORTS]  # removed after the summary


def report_failure(title: str, text: str) -> None:
    """Keep why a shared pipeline run failed for the end of the output: a run is a module
    fixture, so its error is otherwise repeated in every test that uses it, cut, or lost
    in the middle of a long log."""
    folder = os.environ.get(FAILURE_REPORTS)
    if folder:
        Path(folder, f"{time.time_ns()}.txt").write_text(f"{title}\n{text}", encoding="utf-8")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    folder = os.environ.get(FAILURE_REPORTS)
    if hasattr(config, "workerinput") or not folder or not Path(folder).is_dir():
        return
    for report in sorted(Path(folder).glob("*.txt")):
        title, _, text = report.read_text(encoding="utf-8").partition("\n")
        terminalreporter.section(f"why the {title} failed", sep="-")
        terminalreporter.write_line(text[:6000])
    if config.stash.get(OWN_FAILURE_REPORTS, None) == folder:
        shutil.rmtree(folder, ignore_errors=True)
