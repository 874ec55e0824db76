"""The one place that decides how every Spark process is configured.

Spark jobs build their session from :func:`spark_conf`; dbt's in-process session (dbt-spark,
``method: session``) reads the same values from the ``spark-defaults.conf`` that
:func:`write_spark_defaults` renders into ``SPARK_CONF_DIR``. Sharing one configuration is what
lets dbt see the tables the ingestion job registered in the metastore.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

from spark_jobs.settings import Settings

log = logging.getLogger(__name__)

SCALA_VERSION = "2.13"
GLUE_CLIENT_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"


def delta_maven_coordinate() -> str:
    """The io.delta jar matching the installed pyspark and delta-spark wheels.

    Since Delta 4.1 the artifact name carries the Spark minor version
    (``io.delta:delta-spark_4.2_2.13:4.4.1``).
    """
    spark_minor = ".".join(importlib.metadata.version("pyspark").split(".")[:2])
    delta_version = importlib.metadata.version("delta-spark")
    return f"io.delta:delta-spark_{spark_minor}_{SCALA_VERSION}:{delta_version}"


def hadoop_version() -> str:
    """The Hadoop client version in the pyspark wheel (hadoop-client-api-<version>.jar)."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    for jar in sorted(jars.glob("hadoop-client-api-*.jar")):
        return jar.stem.removeprefix("hadoop-client-api-")
    raise RuntimeError(f"no hadoop-client-api jar in {jars}: is pyspark installed whole?")


def maven_coordinates(settings: Settings) -> list[str]:
    """The jars Spark fetches for this configuration: Delta always; hadoop-aws (the s3a://
    file system, at the wheel's Hadoop version) when the landing zone or the warehouse is on S3;
    Delta's DynamoDB log store when a table for it is set."""
    coordinates = [delta_maven_coordinate()]
    if settings.object_store_urls or settings.delta_dynamodb_table:
        coordinates.append(f"org.apache.hadoop:hadoop-aws:{hadoop_version()}")
    if settings.delta_dynamodb_table:
        coordinates.append(f"io.delta:delta-storage-s3-dynamodb:{importlib.metadata.version('delta-spark')}")
    return coordinates


def resolved_jars_file() -> Path:
    """Where the local jars that Ivy resolved are remembered: inside the virtual environment,
    so a new environment (new versions) starts over."""
    return Path(sys.prefix) / "cdp-resolved-jars.json"


def resolved_jars(settings: Settings) -> str | None:
    """The local jar paths Ivy resolved for these coordinates in an earlier process, if they
    are all still there. Handing them to Spark as ``spark.jars`` skips Ivy resolution, about
    4-5 s of every local process start (about 20 of them per pipeline run and test session)."""
    try:
        known = json.loads(resolved_jars_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    jars = known.get(",".join(maven_coordinates(settings)))
    if not jars or not all(Path(urlparse(jar).path).is_file() for jar in jars.split(",")):
        return None
    return jars


def remember_resolved_jars(session, coordinates: str) -> None:
    """After Ivy resolved ``spark.jars.packages``, keep the local paths it put in ``spark.jars``."""
    jars = session.sparkContext.getConf().get("spark.jars", "")
    if not jars or "delta-spark" not in jars:
        return
    path = resolved_jars_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        known[coordinates] = jars
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(known, indent=2), encoding="utf-8")
        temporary.replace(path)  # atomic: concurrent processes never read half a file
    except OSError as error:
        log.debug("could not remember the resolved jars in %s: %s", path, error)


def extra_conf(settings: Settings) -> dict[str, str]:
    """``CDP_SPARK_CONF``: space-separated ``key=value`` Spark settings (a cluster's executor
    sizes, the UI port, ...)."""
    conf = {}
    for pair in shlex.split(settings.spark_extra_conf):
        key, equals, value = pair.partition("=")
        if not (equals and key.startswith("spark.")):
            raise ValueError(f"CDP_SPARK_CONF: {pair!r} is not a spark.<key>=<value> pair")
        conf[key] = value
    return conf


def object_store_conf(settings: Settings) -> dict[str, str]:
    """s3a:// for the landing zone and the warehouse. Credentials come from the AWS default
    chain (environment, profile, instance or task role), never from the configuration. With
    ``CDP_S3_ENDPOINT_URL`` (an S3-compatible server, the local one included) requests go
    there, path-style."""
    conf: dict[str, str] = {}
    if not (settings.object_store_urls or settings.delta_dynamodb_table):
        return conf
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    if settings.s3_endpoint_url:
        conf["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint_url
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(settings.s3_endpoint_url.startswith("https")).lower()
    if settings.delta_dynamodb_table:
        # Several Spark applications may write one table: Delta serialises its commits in DynamoDB.
        conf["spark.delta.logStore.s3a.impl"] = "io.delta.storage.S3DynamoDBLogStore"
        conf["spark.delta.logStore.s3.impl"] = "io.delta.storage.S3DynamoDBLogStore"
        conf["spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName"] = settings.delta_dynamodb_table
        conf["spark.io.delta.storage.S3DynamoDBLogStore.ddb.region"] = region
    return conf


# Compiling Java code for each query (Janino) was 39 % of the Spark service's CPU on a 60-customer
# run: a run is thousands of small queries. Interpreted plans cut the service's CPU on the
# 1,000-customer sample by a fifth (626 s -> 497 s) and a slice of the activation tests from
# 161 s to 100 s. In this mode a classic session cannot decode spark.catalog.listTables' rows
# (EXPRESSION_DECODING_FAILED): list tables with table_names().
INTERPRETED_PLANS = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def table_names(spark, database: str, views: bool = True) -> list[str]:
    """The permanent tables of ``database`` (and its views unless ``views=False``), sorted.
    Plain SQL, which works on every session, unlike ``spark.catalog.listTables`` (above)."""
    names = {row.tableName for row in spark.sql(f"SHOW TABLES IN `{database}`").collect() if not row.isTemporary}
    if not views:
        names -= {row.viewName for row in spark.sql(f"SHOW VIEWS IN `{database}`").collect()}
    return sorted(names)


def spark_conf(settings: Settings) -> dict[str, str]:
    conf = {
        "spark.master": settings.spark_master,
        "spark.jars.packages": ",".join(maven_coordinates(settings)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": settings.warehouse_uri,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.ui.showConsoleProgress": "false",
        # No session-wide schema evolution (spark.databricks.delta.schema.autoMerge.enabled):
        # it reaches dbt's MERGEs too, and its snapshot MERGE then added its staging columns
        # (dbt_change_type, dbt_unique_key) to the snapshot, which broke the third run. Writes
        # that must evolve a schema ask for it (bronze's MERGE: withSchemaEvolution()).
    }
    conf.update(object_store_conf(settings))
    java_options = []
    if settings.catalog == "glue":
        # The AWS Glue Data Catalog as Spark's Hive metastore. The client factory ships with EMR
        # (EMR Serverless included); elsewhere put AWS's Glue Data Catalog client on the class path.
        conf["spark.hadoop.hive.metastore.client.factory.class"] = GLUE_CLIENT_FACTORY
    elif settings.hive_metastore_uris:
        conf["spark.hadoop.hive.metastore.uris"] = settings.hive_metastore_uris
    else:
        # Embedded Derby metastore at a fixed path, so every process (jobs, dbt, BI's Thrift
        # server) opens the same catalog. Derby admits one process at a time.
        db = settings.metastore_dir / "metastore_db"
        conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = f"jdbc:derby:;databaseName={db};create=true"
        java_options.append(f"-Dderby.system.home={settings.metastore_dir}")
    if settings.spark_master.startswith("local"):
        if settings.local_java_options.lower() != "none":
            java_options.append(settings.local_java_options)
        # Delta rebuilds table state with 50 partitions by default: on 2 local cores that
        # doubles the time of every small read and write. Clusters keep Delta's default.
        conf["spark.databricks.delta.snapshotPartitions"] = "2"
        if not settings.local_codegen:
            conf.update(INTERPRETED_PLANS)
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        jars = resolved_jars(settings)
        if jars:  # resolved by an earlier local process: no Ivy round this time
            del conf["spark.jars.packages"]
            conf["spark.jars"] = jars
        # Python workers (pandas UDFs) use this interpreter, with the project's packages, not
        # whatever `python3` is first on PATH. A cluster sets its own.
        conf["spark.pyspark.python"] = sys.executable
    if java_options:
        conf["spark.driver.extraJavaOptions"] = " ".join(java_options)
    conf.update(extra_conf(settings))
    return conf


def build_session(settings: Settings, app_name: str, overrides: dict[str, str] | None = None):
    """The SparkSession of a job. With ``CDP_SPARK_REMOTE`` set, a Spark Connect session on the
    Spark service (spark_jobs/service.py: no JVM in this process, first query in about a
    second); else a Spark of its own (Delta, metastore, warehouse from :func:`spark_conf`).
    Imported lazily: no JVM at import."""
    from pyspark.sql import SparkSession

    if settings.spark_remote and (overrides or {}).get("spark.sql.catalogImplementation") != "in-memory":
        allow_deep_plans()
        # No builder options (appName included): the builder would send them in a request
        # with the default retries, before the policy below is in place.
        session = SparkSession.builder.remote(settings.spark_remote).getOrCreate()
        fail_fast_when_the_service_is_gone(session)
        # The service holds the static configuration; a client may change only runtime SQL settings.
        for key, value in (overrides or {}).items():
            if key.startswith("spark.sql.") and key != "spark.sql.catalogImplementation":
                session.conf.set(key, value)
        return session
    conf = {**spark_conf(settings), **(overrides or {})}
    if "spark.pyspark.python" in conf:
        # pyspark reads the worker interpreter from the environment, not from the conf.
        os.environ.setdefault("PYSPARK_PYTHON", conf["spark.pyspark.python"])
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if (overrides or {}).get("spark.sql.catalogImplementation", "hive") == "hive":
        builder = builder.enableHiveSupport()
    session = builder.getOrCreate()
    if "spark.jars.packages" in conf and conf["spark.master"].startswith("local"):
        remember_resolved_jars(session, conf["spark.jars.packages"])
    return session


# Spark Connect's default retries wait at least 10 minutes in all per request: a job whose
# service died (an out-of-memory kill, a port taken while it started) then hangs for as long,
# one request after the other. Seven retries wait about 2 minutes, beyond any pause of a live
# service (a long garbage collection, a busy driver).
CONNECT_RETRIES = 7


def fail_fast_when_the_service_is_gone(session) -> None:
    from pyspark.sql.connect.client.retries import DefaultPolicy

    session.client.set_retry_policies([DefaultPolicy(max_retries=CONNECT_RETRIES)])


def allow_deep_plans() -> None:
    """Let this process send Spark Connect plans nested deeper than 100 protobuf levels.

    pyspark builds a plan by copying each child relation into its parent, and protobuf's C
    implementation (upb) parses every copy with a depth limit of 100 unless oversize messages
    are allowed. The identity job's plans (deeply nested standardisation expressions in unions
    of sources) go deeper ("Error parsing message with type 'spark.connect.Relation'"). The
    pure-Python implementation has no limit but cost the identity job 45 s of client CPU of its
    88 s at 1,000 customers (1 s with upb). The server's own limit is
    ``spark.connect.grpc.marshallerRecursionLimit`` (1024)."""
    try:
        from google._upb import _message  # protobuf's C implementation, the default one
    except ImportError:  # the pure-Python (or another) implementation: no such limit
        return
    _message.SetAllowOversizeProtos(True)


def is_connect(spark) -> bool:
    """A Spark Connect session (no JVM here: no sparkContext, _jvm, rdd or DeltaTable)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def quiet(spark) -> None:
    """Spark's own log at ERROR in a process that started its own Spark (a Connect client logs
    nothing of the service's)."""
    if not is_connect(spark):
        spark.sparkContext.setLogLevel("ERROR")


def write_spark_defaults(settings: Settings) -> Path:
    """Render :func:`spark_conf` as ``spark-defaults.conf`` for processes we don't build (dbt)."""
    conf_dir = settings.spark_conf_dir
    conf_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# Generated by spark_jobs.spark.write_spark_defaults; edit spark_jobs/spark.py instead."]
    lines += [f"{key} {value}" for key, value in sorted(spark_conf(settings).items())]
    path = conf_dir / "spark-defaults.conf"
    path.write_text("\n".join(lines) + "\n")
    return conf_dir


def ensure_local_dirs(settings: Settings) -> None:
    """The local folders of the state folder (not the landing zone or the warehouse when they
    are on an object store)."""
    paths = [settings.metastore_dir, settings.scratch_dir]
    paths += [] if settings.landing_url else [settings.landing_dir]
    paths += [] if settings.lakehouse_url else [settings.lakehouse_dir]
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
