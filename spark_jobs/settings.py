"""Runtime settings shared by every Spark job, the Dagster project and the local runner.

Everything is read from environment variables *when asked* (never at import time), with
defaults that make a fresh clone self-contained: all local state lives under ``CDP_HOME``
(``<repo>/.cdp`` by default), so deleting that folder is a clean reset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# name of the dataclass field -> (environment variable, description); .env.example mirrors this.
ENV_VARS: dict[str, tuple[str, str]] = {
    "home": ("CDP_HOME", "folder holding all local state (landing, lakehouse, metastore, dagster, s3)"),
    "landing_dir": ("CDP_LANDING_DIR", "landing zone root; default $CDP_HOME/landing"),
    "landing_url": (
        "CDP_LANDING_URL",
        "landing zone as a Hadoop URI (s3a://bucket/landing) for Spark jobs; overrides CDP_LANDING_DIR when set",
    ),
    "lakehouse_dir": ("CDP_LAKEHOUSE_DIR", "Spark warehouse root for bronze/silver/gold; default $CDP_HOME/lakehouse"),
    "lakehouse_url": (
        "CDP_LAKEHOUSE_URL",
        "the warehouse (every Delta table) as a Hadoop URI (s3a://bucket/warehouse); "
        "overrides CDP_LAKEHOUSE_DIR when set",
    ),
    "delta_dynamodb_table": (
        "CDP_DELTA_DYNAMODB_TABLE",
        "DynamoDB table of Delta's S3 log store, for Delta tables on S3 written by more than one Spark application; "
        "empty = Delta's default S3 log store (one writing application per table)",
    ),
    "spark_master": ("CDP_SPARK_MASTER", "Spark master URL: local[*], spark://host:7077, yarn, k8s://..."),
    "spark_driver_memory": ("CDP_SPARK_DRIVER_MEMORY", "driver memory for locally launched Spark processes"),
    "local_java_options": (
        "CDP_LOCAL_JAVA_OPTIONS",
        "JVM options of the Spark drivers started on this machine with a local[...] master (the service, "
        "local jobs, the tests); default: the C1 compiler only, a 512 MB code cache and the parallel "
        "collector, which spend far less CPU on compiling and collecting than C2 and G1 on sample data; "
        "'none' = the JVM's defaults (C2, better for long runs on large data)",
    ),
    "local_codegen": (
        "CDP_LOCAL_CODEGEN",
        "Spark's code generation in Spark drivers on a local[...] master (the service, the tests): "
        "'true' (default) = Spark's default, whole-stage code generation, needed on real data; "
        "'false' evaluates plans interpreted, which spends far less CPU on the thousands of small "
        "queries of a sample run (./cdp run and bench set it for samples of at most 1,000 customers, "
        "the tests set it). Clusters keep Spark's default",
    ),
    "spark_shuffle_partitions": ("CDP_SPARK_SHUFFLE_PARTITIONS", "spark.sql.shuffle.partitions"),
    "catalog": (
        "CDP_CATALOG",
        "the table catalog: hive (the embedded Derby metastore, or the service named by CDP_HIVE_METASTORE_URIS) "
        "or glue (the AWS Glue Data Catalog, through the Glue Hive client that EMR ships)",
    ),
    "hive_metastore_uris": (
        "CDP_HIVE_METASTORE_URIS",
        "thrift:// URI of a shared Hive metastore; empty = embedded Derby",
    ),
    "spark_extra_conf": (
        "CDP_SPARK_CONF",
        "more Spark settings, space-separated key=value (spark.executor.memory=8g spark.ui.port=4050), "
        "applied last to the service and to every Spark the jobs start",
    ),
    "checkpoint_dir": (
        "CDP_CHECKPOINT_DIR",
        "Spark's checkpoint folder as a Hadoop URI; default $CDP_HOME/spark-service/checkpoints "
        "(on a cluster: a path every node reaches, e.g. s3a://bucket/checkpoints)",
    ),
    "spark_remote": (
        "CDP_SPARK_REMOTE",
        "Spark Connect URL of the Spark service (sc://localhost:15002) the jobs and dbt use; empty = "
        "each process starts its own Spark (./cdp sets it to its service)",
    ),
    "service_host": ("CDP_SERVICE_HOST", "address the Spark service binds (JDBC and Connect); loopback by default"),
    "sql_port": ("CDP_SQL_PORT", "the Spark service's HiveServer2 port (JDBC/ODBC for BI tools)"),
    "connect_port": ("CDP_CONNECT_PORT", "the Spark service's Spark Connect port"),
    "sql_authentication": (
        "CDP_SQL_AUTHENTICATION",
        "HiveServer2 authentication: NONE (loopback only), LDAP or KERBEROS",
    ),
    "sql_hive_conf": (
        "CDP_SQL_HIVE_CONF",
        "extra HiveServer2 settings, space-separated key=value (hive.server2.authentication.ldap.url=...)",
    ),
    "spark_service_memory": ("CDP_SPARK_SERVICE_MEMORY", "driver memory of the Spark service"),
    "max_parallel_steps": (
        "CDP_MAX_PARALLEL_STEPS",
        "pipeline steps that may run at once against the Spark service or a shared metastore (1 = one at a time)",
    ),
    "table_parallelism": (
        "CDP_TABLE_PARALLELISM",
        "tables one step works on at once (concurrent Spark jobs in the one Spark application; 1 = one at a time)",
    ),
    "spark_service_log_level": (
        "CDP_SPARK_SERVICE_LOG_LEVEL",
        "level of Spark's own log in the service's log (WARN; INFO logs every task, 270,000 lines a run)",
    ),
    "launcher": (
        "CDP_LAUNCHER",
        "how Dagster launches a step: subprocess (python -m <module> on this machine) or emr_serverless "
        "(a job run of CDP_EMR_APPLICATION_ID through Dagster Pipes)",
    ),
    "emr_application_id": ("CDP_EMR_APPLICATION_ID", "EMR Serverless application of the job runs"),
    "emr_execution_role_arn": ("CDP_EMR_EXECUTION_ROLE_ARN", "role the EMR Serverless job runs assume"),
    "emr_log_group": ("CDP_EMR_LOG_GROUP", "CloudWatch log group of the EMR Serverless job runs"),
    "pipes_bucket": ("CDP_PIPES_BUCKET", "bucket of the job runs' code bundle and Pipes messages"),
    "pipes_prefix": ("CDP_PIPES_PREFIX", "key prefix of the code bundle and the Pipes messages in CDP_PIPES_BUCKET"),
    "s3_endpoint_url": ("CDP_S3_ENDPOINT_URL", "S3 endpoint; empty = real AWS S3"),
    "export_bucket": ("CDP_EXPORT_BUCKET", "bucket that receives audience exports"),
    "export_prefix": ("CDP_EXPORT_PREFIX", "key prefix for audience exports"),
    "partitions_start": (
        "CDP_PARTITIONS_START",
        "first delivery day (YYYY-MM-DD) of the event sources' daily partitions; ./cdp sets the sample's first day",
    ),
    "partitions_end": (
        "CDP_PARTITIONS_END",
        "last delivery day (YYYY-MM-DD) of the daily partitions; empty = today (production); "
        "./cdp sets the sample's last day",
    ),
    "reporting_currency": (
        "CDP_REPORTING_CURRENCY",
        "ISO 4217 code every amount is converted to (gold tables, "
        "scores); the dbt var reporting_currency defaults to it",
    ),
}


CATALOGS = ("hive", "glue")


def _boolean(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in {"true", "1", "yes", "on"}:
        return True
    if value in {"false", "0", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {text!r}")


def _check_partition_days(start: str, end: str) -> None:
    days = {}
    for name, value in (("CDP_PARTITIONS_START", start), ("CDP_PARTITIONS_END", end)):
        try:
            days[name] = date.fromisoformat(value) if value else None
        except ValueError:
            raise ValueError(f"{name} must be a day as YYYY-MM-DD, got {value!r}") from None
    if days["CDP_PARTITIONS_END"] and days["CDP_PARTITIONS_END"] < days["CDP_PARTITIONS_START"]:
        raise ValueError(f"CDP_PARTITIONS_END ({end}) is before CDP_PARTITIONS_START ({start})")


LAUNCHERS = ("subprocess", "emr_serverless")
# Small data on a few cores: C2's compilations and G1's concurrent threads cost more CPU than
# they save. Measured on the service of a 60-customer run: compiler threads 158 s -> 9 s of CPU,
# G1 and GC threads 44 s -> 19 s. C1 alone needs a larger code cache than the 48 MB the JVM then
# reserves, or its sweeper thread takes the time saved (108 s).
LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m -XX:+UseParallelGC"


@dataclass(frozen=True)
class Settings:
    home: Path
    landing_dir: Path
    lakehouse_dir: Path
    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    local_java_options: str = LOCAL_JAVA_OPTIONS
    local_codegen: bool = True
    spark_shuffle_partitions: int = 8
    hive_metastore_uris: str = ""
    catalog: str = "hive"
    launcher: str = "subprocess"
    emr_application_id: str = ""
    emr_execution_role_arn: str = ""
    emr_log_group: str = ""
    pipes_bucket: str = ""
    pipes_prefix: str = "dagster-pipes"
    s3_endpoint_url: str = ""
    export_bucket: str = "cdp-exports"
    export_prefix: str = "audiences"
    landing_url: str = ""
    lakehouse_url: str = ""
    spark_extra_conf: str = ""
    checkpoint_dir: str = ""
    delta_dynamodb_table: str = ""
    reporting_currency: str = "EUR"
    partitions_start: str = "2025-01-01"
    partitions_end: str = ""
    spark_remote: str = ""
    service_host: str = "127.0.0.1"
    sql_port: int = 10000
    connect_port: int = 15002
    sql_authentication: str = "NONE"
    sql_hive_conf: str = ""
    spark_service_memory: str = "4g"
    spark_service_log_level: str = "WARN"
    max_parallel_steps: int = 2
    table_parallelism: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_VARS[name][0], "").strip()
            return value or None

        home = Path(get("home") or REPO_ROOT / ".cdp").resolve()
        defaults = {f.name: f.default for f in fields(cls) if f.name not in {"home", "landing_dir", "lakehouse_dir"}}
        values = {name: (get(name) if get(name) is not None else default) for name, default in defaults.items()}
        for number in (
            "spark_shuffle_partitions",
            "sql_port",
            "connect_port",
            "max_parallel_steps",
            "table_parallelism",
        ):
            values[number] = int(values[number])
        if values["table_parallelism"] < 1:
            raise ValueError(f"CDP_TABLE_PARALLELISM must be 1 or more, got {values['table_parallelism']}")
        if isinstance(values["local_codegen"], str):
            values["local_codegen"] = _boolean("CDP_LOCAL_CODEGEN", values["local_codegen"])
        values["catalog"] = values["catalog"].lower()
        if values["catalog"] not in CATALOGS:
            raise ValueError(f"CDP_CATALOG must be one of {', '.join(CATALOGS)}, got {values['catalog']!r}")
        values["launcher"] = values["launcher"].lower()
        if values["launcher"] not in LAUNCHERS:
            raise ValueError(f"CDP_LAUNCHER must be one of {', '.join(LAUNCHERS)}, got {values['launcher']!r}")
        values["reporting_currency"] = values["reporting_currency"].upper()
        if not (len(values["reporting_currency"]) == 3 and values["reporting_currency"].isalpha()):
            raise ValueError(
                f"CDP_REPORTING_CURRENCY must be a three-letter ISO 4217 code, got {values['reporting_currency']!r}"
            )
        _check_partition_days(values["partitions_start"], values["partitions_end"])
        return cls(
            home=home,
            landing_dir=Path(get("landing_dir") or home / "landing").resolve(),
            lakehouse_dir=Path(get("lakehouse_dir") or home / "lakehouse").resolve(),
            **values,
        )

    def partition_days(self) -> tuple[date, date | None]:
        """The first and last (None: open, up to today) delivery day of the daily partitions."""
        end = date.fromisoformat(self.partitions_end) if self.partitions_end else None
        return date.fromisoformat(self.partitions_start), end

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        return {env_name: str(getattr(self, name)) for name, (env_name, _) in ENV_VARS.items()}

    @property
    def landing_uri(self) -> str:
        """Where Spark jobs list and read landing files: a local folder or an object-store prefix."""
        return self.landing_url or self.landing_dir.as_uri()

    @property
    def warehouse_uri(self) -> str:
        """Spark's warehouse, where every database and Delta table lives: a local folder or an
        object-store prefix."""
        return self.lakehouse_url.rstrip("/") or self.lakehouse_dir.as_uri()

    @property
    def object_store_urls(self) -> list[str]:
        """The landing zone and warehouse URLs that are on an object store (s3a://)."""
        return [url for url in (self.landing_url, self.lakehouse_url) if url.startswith("s3a://")]

    # Derived locations of the embedded default. All of them sit under ``home``.
    @property
    def metastore_dir(self) -> Path:
        return self.home / "metastore"

    @property
    def spark_conf_dir(self) -> Path:
        return self.home / "spark-conf"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def s3_data_dir(self) -> Path:
        return self.home / "s3"

    @property
    def scratch_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def dbt_runs_dir(self) -> Path:
        """One folder per dbt invocation of a pipeline step (its logs, run_results, manifest)."""
        return self.home / "dbt-runs"
