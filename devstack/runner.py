"""``./cdp run`` and ``./cdp dev``: the embedded default around the Dagster project.

It decides the local environment in one place: resolves settings, renders the shared Spark
configuration, starts the local S3-compatible server (unless ``CDP_LOCAL_S3=false``, e.g. to
export to real S3) and the local stand-ins of the CRM, email-platform and webhook APIs (unless
``CDP_LOCAL_APIS=false``), parses the dbt project, then runs the main job (or ``dagster dev``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from urllib.parse import urlparse

from dagster_project.defs.dbt.project import prepare_manifest
from devstack.mock_apis import MockApis
from devstack.s3_server import LOCAL_CREDENTIALS, LocalS3Server
from spark_jobs.reporting import configure_logging
from spark_jobs.service import Service, spark_home, start_on_free_ports
from spark_jobs.settings import REPO_ROOT, Settings
from spark_jobs.spark import ensure_local_dirs, write_spark_defaults

log = logging.getLogger("cdp")

SAMPLE_DAYS = 7  # daily deliveries in the sample landing zone of ./cdp run
CODE_LOCATION_MODULE = "devstack.definitions"  # what `./cdp dev` loads: its module name is the location's


def code_location_job_origin(job_name: str, repository_name: str):
    """The origin the Dagster UI of `./cdp dev` gives a run of ``job_name``: the job in the
    repository of the code location that `dagster dev -m devstack.definitions` loads. A run that
    carries it is listed under its job, in the timeline and in the code location, like a run
    launched from the UI or by a schedule."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin, RemoteRepositoryOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=CODE_LOCATION_MODULE, working_directory=str(REPO_ROOT)
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target)  # named after the module, as dagster dev does
    return RemoteRepositoryOrigin(location, repository_name).get_job_origin(job_name)


def _truthy(value: str | None, default: bool) -> bool:
    return default if value in (None, "") else value.strip().lower() in {"1", "true", "yes", "on"}


def prepare_environment(settings: Settings) -> dict[str, str]:
    """Create the local folders and return the environment every process of the run shares."""
    ensure_local_dirs(settings)
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    dagster_yaml = settings.dagster_home / "dagster.yaml"
    if not dagster_yaml.exists():
        dagster_yaml.write_text("telemetry:\n  enabled: false\n")
    env = {
        **settings.to_env(),
        "SPARK_CONF_DIR": str(write_spark_defaults(settings)),
        "DAGSTER_HOME": str(settings.dagster_home),
        "DBT_PROFILES_DIR": str(REPO_ROOT / "dbt"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if settings.spark_master.startswith("local"):
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
    if settings.spark_remote:
        # dbt-spark's session method becomes a Spark Connect client of the service, which serves
        # concurrent queries: 4 dbt threads (71 s instead of 93 s for the second dbt step at
        # 1,000 customers on 2 cores), unless CDP_DBT_THREADS says otherwise.
        env["SPARK_REMOTE"] = settings.spark_remote
        env["CDP_DBT_THREADS"] = os.environ.get("CDP_DBT_THREADS") or "4"
        # dbt-spark asks every Connect session for Hive support, a static setting the service
        # already has: pyspark then warns on each of dbt's ~200 nodes. Nothing is wrong.
        quiet_dbt = "ignore:Failed to set spark.sql.catalogImplementation:UserWarning"
        env["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), quiet_dbt)))
    return env


def start_spark_service(environ: dict[str, str]) -> Service | None:
    """The Spark service of this CDP_HOME (started unless it runs), whose Connect URL the
    steps and dbt use; None with CDP_SPARK_SERVICE=false (each step starts its own Spark, as
    before) or when CDP_SPARK_REMOTE already names a service elsewhere (a cluster's)."""
    if not _truthy(environ.get("CDP_SPARK_SERVICE"), default=True) or environ.get("CDP_SPARK_REMOTE"):
        return None
    service = Service(Settings.from_env(environ)).adopt_running()
    if not service.is_up():
        service = start_on_free_ports(service, environ)
    environ["CDP_SPARK_REMOTE"] = service.remote
    environ["CDP_CONNECT_PORT"], environ["CDP_SQL_PORT"] = map(str, service.ports())
    return service


def sample_partition_days(environ: dict[str, str], sample_days: int) -> None:
    """The event sources' daily partitions span the sample's delivery days, unless the
    environment says otherwise (an empty CDP_PARTITIONS_END: open, up to today)."""
    from devstack.sample.generate import delivery_days

    days = delivery_days(sample_days)
    environ.setdefault("CDP_PARTITIONS_START", days[0].isoformat())
    environ.setdefault("CDP_PARTITIONS_END", days[-1].isoformat())


@contextmanager
def local_stack(environ: dict[str, str] | None = None, sample_days: int = SAMPLE_DAYS) -> Iterator[Settings]:
    """Settings resolved, environment exported to this process, local S3 up while inside; the
    partitions cover the ``sample_days`` delivery days of the sample."""
    environ = dict(os.environ if environ is None else environ)
    sample_partition_days(environ, sample_days)
    settings = Settings.from_env(environ)
    with ExitStack() as stack:
        if _truthy(environ.get("CDP_LOCAL_S3"), default=True):
            server = stack.enter_context(
                LocalS3Server(
                    settings.s3_data_dir,
                    port=int(environ.get("CDP_LOCAL_S3_PORT") or 4566),
                    log_file=settings.home / "s3-server.log",
                )
            )
            server.ensure_bucket(settings.export_bucket)
            for url in settings.object_store_urls:  # s3a://bucket/prefix: the landing zone, the warehouse
                server.ensure_bucket(urlparse(url).netloc)
            for key, value in LOCAL_CREDENTIALS.items():
                environ[key] = value
            environ["CDP_S3_ENDPOINT_URL"] = server.endpoint_url
            settings = Settings.from_env(environ)
        if _truthy(environ.get("CDP_LOCAL_APIS"), default=True):
            # The CRM, email platform and webhook are SaaS we cannot reach: local stand-ins.
            apis = stack.enter_context(
                MockApis(
                    int(environ.get("CDP_LOCAL_APIS_PORT") or 0),
                    settings.home / "mock-apis" / "state.json",
                    record_requests=False,
                )
            )
            environ.update(apis.environment())
        if start_spark_service(environ):
            settings = Settings.from_env(environ)
        saved_environ = dict(os.environ)
        os.environ.update({**environ, **prepare_environment(settings)})
        try:
            yield settings
        finally:
            os.environ.clear()
            os.environ.update(saved_environ)
            stop_step_forkserver()


def stop_step_forkserver() -> None:
    """Stop the forkserver the job's step processes fork from (the ``cdp_steps`` executor starts
    one per process, on its first run). It keeps the environment it started with, so a later run
    in this process, with its own local S3 and destination stand-ins on other ports, would run
    its steps with the first run's URLs. The next run starts a fresh one."""
    import multiprocessing.forkserver

    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)  # CPython's own (private) way to stop it
    if stop is not None:
        stop()


def run_main_job(
    customers: int,
    seed: int,
    asset_selection=None,
    days: int = SAMPLE_DAYS,
    withhold_last_days: int = 0,
    ingest_days: int | None = None,
    asset_check_selection=None,
    daily: bool = False,
):
    """Execute the main job (the daily job if ``daily``; or the ``asset_selection`` of it: asset keys)
    as a run of the local code location's job on the Dagster instance in DAGSTER_HOME (steps in
    parallel per the job's executor), on a sample zone of ``days`` daily deliveries
    of which the last ``withhold_last_days`` have not arrived yet. The event sources' partition
    range is the delivered days, or only the last ``ingest_days`` of them (a daily run).
    ``asset_check_selection`` (check keys) limits the checks of a selection; default: all of them."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.execution.api import execute_run

    prepare_manifest()
    from dagster_project.definitions import DAILY_JOB_NAME, MAIN_JOB_NAME
    from dagster_project.defs.ingest.partitions import partition_range_tags
    from devstack.sample.generate import delivery_days

    delivered = delivery_days(days)[: days - withhold_last_days]
    ingested = delivered[-ingest_days:] if ingest_days else delivered
    run_config = {
        "ops": {
            "landing__sample_sources": {
                "config": {"customers": customers, "seed": seed, "days": days, "withhold_last_days": withhold_last_days}
            }
        }
    }
    # Reconstructable: every step process loads the job from the code location, as a deployment does.
    repository = ReconstructableRepository.for_module(CODE_LOCATION_MODULE, "defs", str(REPO_ROOT))
    job_name = DAILY_JOB_NAME if daily else MAIN_JOB_NAME
    job = repository.get_reconstructable_job(job_name)
    if asset_selection is not None or asset_check_selection is not None:
        job_def = job.get_definition()
        job = job.get_subset(
            asset_selection=set(asset_selection or job_def.asset_layer.executable_asset_keys),
            asset_check_selection=None if asset_check_selection is None else set(asset_check_selection),
        )
    job_def = job.get_definition()
    # A subset job's config schema has only its own ops.
    run_config = {"ops": {op: config for op, config in run_config["ops"].items() if job_def.graph.has_node_named(op)}}
    with dg.DagsterInstance.get() as instance:
        run = create_run(
            instance, job, run_config, partition_range_tags(ingested[0], ingested[-1]), job_name, repository
        )
        return execute_run(job, run, instance)


def create_run(instance, job, run_config: dict, tags: dict, job_name: str, repository):
    """The run of ``job`` (a reconstructable job, maybe a subset) on the instance, with its asset
    and check selection. Dagster's ``create_run_for_job`` subsets the job again by its assets
    alone and so selects every check of them: a run meant to leave out dbt's tests ran them."""
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.snap import snapshot_from_execution_plan

    job_def = job.get_definition()
    instance_ref = instance.get_ref() if instance.is_persistent else None
    plan = create_execution_plan(job, run_config=run_config, instance_ref=instance_ref, tags=tags)
    return instance.create_run(
        job_name=job_def.name,
        run_id=None,
        run_config=run_config,
        status=None,
        tags=tags,
        root_run_id=None,
        parent_run_id=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        execution_plan_snapshot=snapshot_from_execution_plan(plan, job_def.get_job_snapshot_id()),
        job_snapshot=job_def.get_job_snapshot(),
        parent_job_snapshot=job_def.get_parent_job_snapshot(),
        asset_selection=job.asset_selection,
        asset_check_selection=job.asset_check_selection,
        resolved_op_selection=None,
        op_selection=None,
        job_code_origin=job.get_python_origin(),
        remote_job_origin=code_location_job_origin(job_name, repository.get_definition().name),
        asset_graph=job_def.asset_layer.asset_graph,
    )


def summarise(result) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            lines.append(f"  materialized {materialization.asset_key.to_user_string()}")
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            status = "passed" if evaluation.passed else "FAILED"
            lines.append(f"  check {evaluation.asset_check_key.to_user_string()} {status}")
    return lines


INTERPRETED_SAMPLE_CUSTOMERS = 1_000


def interpret_small_samples(customers: int, environ: MutableMapping[str, str] = os.environ) -> None:
    """A sample of at most 1,000 customers (the default run) is thousands of tiny queries, where
    compiling Java code for each one was 39 % of the Spark service's CPU: such a run evaluates
    plans interpreted (CDP_LOCAL_CODEGEN=false; 1,000 customers: 475 s -> 401 s). On larger data
    interpreted evaluation loses badly (100,000 customers: identity resolution 14 min 48 s instead
    of 7 min 33 s), so larger samples keep Spark's code generation. CDP_LOCAL_CODEGEN, when set,
    wins; a service that is already running keeps the mode it was started with."""
    if customers <= INTERPRETED_SAMPLE_CUSTOMERS:
        environ.setdefault("CDP_LOCAL_CODEGEN", "false")


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    interpret_small_samples(args.customers)
    with local_stack() as settings:
        log.info(
            "CDP_HOME=%s spark_master=%s s3=%s bucket=%s",
            settings.home,
            settings.spark_master,
            settings.s3_endpoint_url or "AWS",
            settings.export_bucket,
        )
        result = run_main_job(args.customers, args.seed)
    print("\n".join(summarise(result)))
    elapsed = time.monotonic() - started
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        print(
            f"cdp run FAILED after {elapsed:.0f}s (run {result.run_id}); failed steps: {failed}. "
            f"Inspect it with ./cdp dev.",
            file=sys.stderr,
        )
        return 1
    print(f"cdp run succeeded in {elapsed:.0f}s (run {result.run_id}); state under {settings.home}")
    if settings.spark_remote:
        print(f"the Spark service keeps running for ./cdp sql and BI tools (JDBC port {settings.sql_port}); ./cdp stop")
    return 0


def step_durations(run_id: str) -> dict[str, float]:
    """Seconds from STEP_START to STEP_SUCCESS/FAILURE per step, from the run's event log."""
    import dagster as dg

    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
                durations[event.step_key] = entry.timestamp - started[event.step_key]
    return durations


DBT_ELAPSED = "  dbt builds, elapsed (dbt's own clock)"
BENCH_DBT_NODES = ("fct_customer_touchpoints", "fct_orders", "fct_customer_journey", "dim_customers", "customer_traits")


def dbt_node_durations(since: float) -> dict[str, float]:
    """Seconds of the dbt invocations written after ``since`` (epoch; the run's dbt steps):
    their builds as dbt timed them, summed, the big models, and all models and all tests summed
    (sums exceed the elapsed time: dbt also parses, compiles, waits)."""
    files = [p for p in Settings.from_env().dbt_runs_dir.glob("*/run_results.json") if p.stat().st_mtime >= since]
    if not files:
        return {}
    invocations = [json.loads(p.read_text()) for p in files]
    nodes = [n for run_results in invocations for n in run_results["results"]]
    durations = {DBT_ELAPSED: sum(r["elapsed_time"] for r in invocations)}
    durations |= {
        f"  dbt {n['unique_id'].split('.')[-1]}": n["execution_time"]
        for n in nodes
        if n["unique_id"].split(".")[-1] in BENCH_DBT_NODES
    }
    for kind in ("model", "test"):
        durations[f"  dbt all {kind}s (sum)"] = sum(
            n["execution_time"] for n in nodes if n["unique_id"].startswith(f"{kind}.")
        )
    return durations


def cmd_bench(args: argparse.Namespace) -> int:
    """The main job with timings per step and the peak memory of every process it starts; with
    --one-more-day, then the daily run that follows when one more day of data arrives."""
    from devstack.memory import PeakMemorySampler

    runs = (
        [
            ("full", {"days": SAMPLE_DAYS + 1, "withhold_last_days": 1}),
            ("one more day", {"days": SAMPLE_DAYS + 1, "ingest_days": 2, "daily": True}),
        ]
        if args.one_more_day
        else [("full", {})]
    )
    interpret_small_samples(args.customers)
    timings: list[tuple[str, dict[str, float], float, bool]] = []
    started = time.monotonic()
    sample_days = max(options.get("days", SAMPLE_DAYS) for _, options in runs)
    with PeakMemorySampler() as memory, local_stack(sample_days=sample_days) as settings:
        for name, options in runs:
            run_started, run_started_at = time.monotonic(), time.time()
            result = run_main_job(args.customers, args.seed, **options)
            timings.append(
                (
                    name,
                    {**step_durations(result.run_id), **dbt_node_durations(run_started_at)},
                    time.monotonic() - run_started,
                    result.success,
                )
            )
            if not result.success:
                break
    wall = time.monotonic() - started
    print(
        f"\nbenchmark: customers={args.customers} seed={args.seed} spark_master={settings.spark_master} "
        f"cores={os.cpu_count()} success={all(t[3] for t in timings)}"
    )
    print(f"  {'step':<48} " + " ".join(f"{name:>14}" for name, *_ in timings))
    for step in timings[0][1]:
        print(f"  {step:<48} " + " ".join(f"{t[1].get(step, float('nan')):12.1f} s" for t in timings))
    print(f"  {'run wall time (incl. dbt parse)':<48} " + " ".join(f"{t[2]:12.1f} s" for t in timings))
    if len(timings) == 2 and timings[0][1].get(DBT_ELAPSED) and timings[1][1].get(DBT_ELAPSED):
        ratio = timings[1][1][DBT_ELAPSED] / timings[0][1][DBT_ELAPSED]
        print(f"  {'daily dbt builds / full dbt builds':<48} {'':>14} {ratio:14.0%}")
    print(f"  {'wall time (incl. S3 server)':<48} {wall:12.1f} s")
    print(f"  {'peak resident memory, all processes':<48} {memory.peak_bytes / 2**30:12.2f} GiB")
    return 0 if all(t[3] for t in timings) else 1


def cmd_sql(args: argparse.Namespace) -> int:
    """Query the lakehouse through the Spark service's JDBC endpoint (HiveServer2), as a BI tool
    does: it works while a run writes, and sees committed snapshots only."""
    from devstack import sql_cli

    environ = dict(os.environ)
    service = start_spark_service(environ)
    if service is None:
        print("cdp: ./cdp sql needs the Spark service (unset CDP_SPARK_SERVICE=false)", file=sys.stderr)
        return 1
    user = os.environ.get("USER", "cdp")
    return sql_cli.main(service.settings.service_host, service.ports()[1], user, args.query, args.format, args.limit)


def service_beeline(service: Service) -> list[str]:
    """beeline (from the pyspark wheel) connected to the service's JDBC endpoint."""
    return [str(spark_home() / "bin" / "beeline"), "-u", service.jdbc_url, "-n", os.environ.get("USER", "cdp")]


def cmd_export_subject(args: argparse.Namespace, rest: list[str]) -> int:
    """The subject access export (spark_jobs/privacy/subject_access.py) on this clone's lakehouse,
    through the Spark service."""
    environ = dict(os.environ)
    if start_spark_service(environ) is None and not environ.get("CDP_SPARK_REMOTE"):
        print("cdp: ./cdp export-subject needs the Spark service (unset CDP_SPARK_SERVICE=false)", file=sys.stderr)
        return 1
    os.environ.update(environ)
    from spark_jobs.privacy import subject_access  # after the environment: see cmd_erase

    return subject_access.main(rest)


def cmd_erase(args: argparse.Namespace, rest: list[str]) -> int:
    """Erasure (spark_jobs/privacy/erasure.py) on this clone's lakehouse and landing zone, with the
    local stand-ins of the destinations up, so that the person is deleted from them too."""
    with local_stack():
        # Imported once the environment names the Spark service: module-level UDFs (phone
        # standardisation) are made for the session kind that is current when they are created.
        from spark_jobs.privacy import erasure

        return erasure.main([*rest, "--fail-if-pending"])


def cmd_dev(args: argparse.Namespace) -> int:
    with local_stack():
        prepare_manifest()
        return subprocess.call(["dagster", "dev", "-m", CODE_LOCATION_MODULE, "-p", str(args.port)], cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole pipeline once on the embedded default")
    run.add_argument("--customers", type=int, default=int(os.environ.get("CDP_SAMPLE_CUSTOMERS") or 1000))
    run.add_argument("--seed", type=int, default=7)
    run.set_defaults(func=cmd_run)
    bench = sub.add_parser("bench", help="run the pipeline and print time per step and peak memory")
    bench.add_argument("--customers", type=int, default=1000)
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument(
        "--one-more-day",
        action="store_true",
        help="deliver the last day of the sample a run later and time that daily run (job cdp_daily) too",
    )
    bench.set_defaults(func=cmd_bench)
    sql = sub.add_parser(
        "sql",
        help="run one Spark SQL query against the local lakehouse (over JDBC; works while a run writes)",
        description="One query through the Spark service's JDBC endpoint. A table shows the first 20 rows "
        "and the row count; CSV and JSON (one object per line) give every row unless --limit is set.",
    )
    sql.add_argument("query")
    sql.add_argument("--limit", type=int, default=None, help="rows to print (table: 20; csv/json: all); 0 = all")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output (default table)")
    sql.set_defaults(func=cmd_sql)
    subject = sub.add_parser(
        "export-subject",
        help="everything held about one person as JSON (--email | --phone | --customer-id, --output)",
        add_help=False,
    )
    subject.set_defaults(func=cmd_export_subject, passthrough=True)
    erase = sub.add_parser(
        "erase",
        help="erase one person (--email | --phone | --customer-id, --request-id) and every open request",
        add_help=False,
    )
    erase.set_defaults(func=cmd_erase, passthrough=True)
    dev = sub.add_parser("dev", help="start the Dagster UI with the local stack")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=cmd_dev)
    args, rest = parser.parse_known_args(argv)
    configure_logging()
    if getattr(args, "passthrough", False):  # the job parses (and documents) its own options
        return args.func(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
