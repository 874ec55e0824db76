"""The jobs on a real Spark cluster: a standalone master and one 1-core worker started from the
pyspark wheel on 127.0.0.1, the Spark service on it (CDP_SPARK_MASTER=spark://...), and
ingestion and identity resolution as the service's clients. Their results must equal those of
the same jobs on local[*], and the work must have run on the worker's executor, as the
driver's REST API tells.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from devstack.s3_server import free_port
from devstack.sample.generate import generate
from spark_jobs.service import Service, spark_home, start_on_free_ports
from spark_jobs.settings import Settings

# Its own xdist group: the cluster's JVMs and two Spark services, beside the unit tests.
pytestmark = pytest.mark.xdist_group("standalone-cluster")

CUSTOMERS, SEED, DAYS = 20, 5, 1
ENTITIES = ("crm_contacts", "shop_orders")


def get_json(url: str):
    # Generous: on 2 busy cores (the suite runs 3 workers) the driver UI once took over 5 s to answer.
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(master URL, master web UI URL): a standalone master and one worker with 1 core."""
    folder = tmp_path_factory.mktemp("cluster")
    port, master_ui, worker_ui = free_port(), free_port(), free_port()
    master = f"spark://127.0.0.1:{port}"
    spark_class = str(spark_home() / "bin" / "spark-class")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder),
        "SPARK_WORKER_DIR": str(folder / "work"),
        "PYSPARK_PYTHON": sys.executable,
    }
    master_class, worker_class = "org.apache.spark.deploy.master.Master", "org.apache.spark.deploy.worker.Worker"
    worker_options = ["--cores", "1", "--memory", "2g", "--webui-port", str(worker_ui)]
    commands = {
        "master": [
            spark_class,
            master_class,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(master_ui),
        ],
        "worker": [spark_class, worker_class, "--host", "127.0.0.1", *worker_options, master],
    }
    processes = []
    try:
        for name, command in commands.items():
            with (folder / f"{name}.log").open("wb") as out:
                processes.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
        ui = f"http://127.0.0.1:{master_ui}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if [w for w in get_json(f"{ui}/json/")["workers"] if w["state"] == "ALIVE" and w["cores"] == 1]:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "\n".join((folder / f"{n}.log").read_text(errors="replace")[-2000:] for n in commands)
                pytest.fail(f"the standalone cluster did not come up:\n{logs}")
            time.sleep(1)
        yield master, ui
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def run_jobs(home: Path, master: str) -> tuple[dict, list[dict]]:
    """Ingest the sample's CRM contacts and orders and resolve identities with the Spark service
    on ``master``; return (the identity map's clusters, the executors the driver reports)."""
    generate(home / "landing", home / "truth", CUSTOMERS, SEED, DAYS)
    ui_port = free_port()
    environ = {
        **os.environ,
        "CDP_HOME": str(home),
        "CDP_SPARK_MASTER": master,
        "CDP_CONNECT_PORT": "0",
        "CDP_SQL_PORT": "0",
        "CDP_SPARK_SHUFFLE_PARTITIONS": "2",
        "CDP_SPARK_SERVICE_MEMORY": "1g",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "CDP_SPARK_CONF": f"spark.ui.port={ui_port}",
    }
    service = start_on_free_ports(Service(Settings.from_env(environ)), environ)
    try:
        jobs_env = {**environ, **service.settings.to_env(), "CDP_SPARK_REMOTE": service.remote}
        for module, arguments in (
            ("spark_jobs.ingest.bronze", ["--entities", *ENTITIES]),
            ("spark_jobs.identity.resolve", []),
        ):
            done = subprocess.run(
                [sys.executable, "-m", module, *arguments], env=jobs_env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{module} on {master}:\n{failure_report(done.stderr, service)}"
        executors = driver_executors(f"http://127.0.0.1:{ui_port}") if master.startswith("spark://") else []
    finally:
        service.stop()
    return identity_clusters(home), executors


def failure_report(stderr: str, service: Service) -> str:
    """A failed job's error without the JVM frames that bury it, and the service log's errors."""
    python_side = "\n".join(line for line in stderr.splitlines() if not line.lstrip().startswith("at "))
    log = service.log_file.read_text(errors="replace") if service.log_file.exists() else ""
    errors = [line for line in log.splitlines() if " ERROR " in line or "Exception" in line[:200]]
    return f"{python_side[-4000:]}\n--- service log errors ---\n" + "\n".join(errors[-30:])


def identity_clusters(home: Path) -> dict:
    """The identity map as clusters of source records (customer ids are new in every home)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(home / "lakehouse" / "silver.db" / "identity_map")).to_pyarrow_table().to_pylist()
    members = defaultdict(set)
    for row in rows:
        members[row["customer_id"]].add((row["source_table"], row["source_record_id"]))
    return {"records": len(rows), "clusters": sorted(sorted(m) for m in members.values())}


def driver_executors(ui: str) -> list[dict]:
    """The executors of the service's application, from the driver's REST API."""
    (application,) = get_json(f"{ui}/api/v1/applications")
    return get_json(f"{ui}/api/v1/applications/{application['id']}/allexecutors")


def test_ingestion_and_identity_on_a_standalone_cluster_equal_local_and_run_on_the_executor(cluster, tmp_path):
    master, master_ui = cluster
    on_cluster, executors = run_jobs(tmp_path / "cluster-home", master)

    applications = get_json(f"{master_ui}/json/")["completedapps"] + get_json(f"{master_ui}/json/")["activeapps"]
    assert any(app["name"] == "cdp-spark-service" for app in applications), applications
    workers = [e for e in executors if e["id"] != "driver"]
    assert workers, executors
    assert sum(e["completedTasks"] for e in workers) > 0, "no task ran on the worker's executor"
    assert all(e["hostPort"].startswith("127.0.0.1:") for e in workers)

    local, _ = run_jobs(tmp_path / "local-home", "local[2]")
    assert on_cluster["records"] > CUSTOMERS
    assert on_cluster == local
