import importlib.metadata
from pathlib import Path

import pytest

from spark_jobs.settings import REPO_ROOT, Settings
from spark_jobs.spark import (
    delta_maven_coordinate,
    ensure_local_dirs,
    maven_coordinates,
    spark_conf,
    write_spark_defaults,
)


def test_defaults_keep_all_state_under_one_folder_in_the_repo():
    settings = Settings.from_env({})
    assert settings.home == REPO_ROOT / ".cdp"
    for path in (
        settings.landing_dir,
        settings.lakehouse_dir,
        settings.metastore_dir,
        settings.dagster_home,
        settings.s3_data_dir,
        settings.spark_conf_dir,
        settings.dbt_runs_dir,
    ):
        assert settings.home in path.parents
    assert settings.spark_master == "local[*]"
    assert settings.s3_endpoint_url == ""


def test_environment_overrides_and_round_trips(tmp_path):
    env = {
        "CDP_HOME": str(tmp_path),
        "CDP_SPARK_MASTER": "spark://head:7077",
        "CDP_SPARK_SHUFFLE_PARTITIONS": "64",
        "CDP_EXPORT_BUCKET": "prod-exports",
        "CDP_HIVE_METASTORE_URIS": "thrift://hms:9083",
    }
    settings = Settings.from_env(env)
    assert (settings.spark_master, settings.spark_shuffle_partitions, settings.export_bucket) == (
        "spark://head:7077",
        64,
        "prod-exports",
    )
    assert settings.lakehouse_dir == tmp_path / "lakehouse"
    assert Settings.from_env(settings.to_env()) == settings


def test_table_parallelism_is_one_or_more(tmp_path):
    import pytest

    assert Settings.from_env({"CDP_HOME": str(tmp_path)}).table_parallelism == 4
    assert Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_TABLE_PARALLELISM": "1"}).table_parallelism == 1
    with pytest.raises(ValueError, match="CDP_TABLE_PARALLELISM must be 1 or more"):
        Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_TABLE_PARALLELISM": "0"})


def test_delta_jar_matches_the_installed_wheels():
    spark_minor = ".".join(importlib.metadata.version("pyspark").split(".")[:2])
    assert (
        delta_maven_coordinate()
        == f"io.delta:delta-spark_{spark_minor}_2.13:{importlib.metadata.version('delta-spark')}"
    )


def test_local_conf_uses_embedded_metastore_and_cluster_conf_uses_a_shared_one(tmp_path):
    local = spark_conf(Settings.from_env({"CDP_HOME": str(tmp_path)}))
    assert str(tmp_path / "metastore" / "metastore_db") in local["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert local["spark.sql.warehouse.dir"] == (tmp_path / "lakehouse").as_uri()
    assert local["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"

    cluster = spark_conf(
        Settings.from_env(
            {"CDP_HOME": str(tmp_path), "CDP_SPARK_MASTER": "yarn", "CDP_HIVE_METASTORE_URIS": "thrift://hms:9083"}
        )
    )
    assert cluster["spark.hadoop.hive.metastore.uris"] == "thrift://hms:9083"
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in cluster
    assert "spark.driver.host" not in cluster
    # JVM options for small data on a few cores go to local drivers only, and can be turned off.
    assert local["spark.driver.extraJavaOptions"].split() == [
        f"-Dderby.system.home={tmp_path / 'metastore'}",
        "-XX:TieredStopAtLevel=1",
        "-XX:ReservedCodeCacheSize=512m",
        "-XX:+UseParallelGC",
    ]
    assert "spark.driver.extraJavaOptions" not in cluster
    plain = spark_conf(Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LOCAL_JAVA_OPTIONS": "none"}))
    assert plain["spark.driver.extraJavaOptions"] == f"-Dderby.system.home={tmp_path / 'metastore'}"
    assert Settings.from_env(Settings.from_env({"CDP_HOME": str(tmp_path)}).to_env()).local_codegen is True
    with pytest.raises(ValueError, match="CDP_LOCAL_CODEGEN must be true or false, got 'maybe'"):
        Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LOCAL_CODEGEN": "maybe"})
    # Spark's code generation by default; CDP_LOCAL_CODEGEN=false interprets plans on local
    # drivers only (no Java compiled per query), a cluster keeps code generation.
    for conf in (local, cluster):
        assert "spark.sql.codegen.wholeStage" not in conf and "spark.sql.codegen.factoryMode" not in conf
    interpreted = spark_conf(Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LOCAL_CODEGEN": "false"}))
    assert (interpreted["spark.sql.codegen.wholeStage"], interpreted["spark.sql.codegen.factoryMode"]) == (
        "false",
        "NO_CODEGEN",
    )
    on_a_cluster = {"CDP_HOME": str(tmp_path), "CDP_LOCAL_CODEGEN": "false", "CDP_SPARK_MASTER": "spark://head:7077"}
    assert "spark.sql.codegen.factoryMode" not in spark_conf(Settings.from_env(on_a_cluster))


def test_spark_defaults_file_carries_the_same_conf_for_dbt(tmp_path):
    settings = Settings.from_env({"CDP_HOME": str(tmp_path)})
    lines = (write_spark_defaults(settings) / "spark-defaults.conf").read_text().splitlines()
    rendered = dict(line.split(" ", 1) for line in lines if not line.startswith("#"))
    assert rendered == spark_conf(settings)


def test_a_lakehouse_on_s3_brings_hadoop_aws_at_the_wheels_hadoop_version_and_s3a_settings(tmp_path):
    import pyspark

    wheel_hadoop = next((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")).stem.split("-")[-1]
    local = Settings.from_env({"CDP_HOME": str(tmp_path)})
    assert maven_coordinates(local) == [delta_maven_coordinate()]  # no AWS SDK to fetch for local folders
    assert not [key for key in spark_conf(local) if key.startswith("spark.hadoop.fs.s3a.")]

    on_s3 = Settings.from_env(
        {
            "CDP_HOME": str(tmp_path),
            "CDP_LAKEHOUSE_URL": "s3a://lake/warehouse/",
            "CDP_S3_ENDPOINT_URL": "http://127.0.0.1:4566",
        }
    )
    assert maven_coordinates(on_s3) == [delta_maven_coordinate(), f"org.apache.hadoop:hadoop-aws:{wheel_hadoop}"]
    conf = spark_conf(on_s3)
    assert conf["spark.sql.warehouse.dir"] == "s3a://lake/warehouse"
    assert "hadoop-aws" in conf.get(
        "spark.jars.packages", conf.get("spark.jars")
    )  # coordinates, or jars resolved before
    assert (conf["spark.hadoop.fs.s3a.endpoint"], conf["spark.hadoop.fs.s3a.path.style.access"]) == (
        "http://127.0.0.1:4566",
        "true",
    )
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not [key for key in conf if "secret" in key.lower() or "access.key" in key.lower()], "keys in the conf"
    assert "spark.delta.logStore.s3a.impl" not in conf  # one writing application: Delta's default log store

    on_aws = spark_conf(
        Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LANDING_URL": "s3a://landing/in", "CDP_S3_ENDPOINT_URL": ""})
    )
    assert "spark.hadoop.fs.s3a.endpoint" not in on_aws  # AWS's own endpoint for the region
    assert on_aws["spark.sql.warehouse.dir"] == (tmp_path / "lakehouse").as_uri()


def test_several_writing_applications_use_deltas_dynamodb_log_store(tmp_path):
    settings = Settings.from_env(
        {"CDP_HOME": str(tmp_path), "CDP_LAKEHOUSE_URL": "s3a://lake/w", "CDP_DELTA_DYNAMODB_TABLE": "delta_log"}
    )
    version = importlib.metadata.version("delta-spark")
    assert maven_coordinates(settings)[-1] == f"io.delta:delta-storage-s3-dynamodb:{version}"
    conf = spark_conf(settings)
    assert conf["spark.delta.logStore.s3a.impl"] == "io.delta.storage.S3DynamoDBLogStore"
    assert conf["spark.io.delta.storage.S3DynamoDBLogStore.ddb.tableName"] == "delta_log"


def test_local_folders_are_made_only_for_what_is_not_on_an_object_store(tmp_path):
    settings = Settings.from_env(
        {"CDP_HOME": str(tmp_path), "CDP_LAKEHOUSE_URL": "s3a://lake/w", "CDP_LANDING_URL": "s3a://landing/in"}
    )
    ensure_local_dirs(settings)
    assert settings.metastore_dir.is_dir() and settings.scratch_dir.is_dir()
    assert not settings.lakehouse_dir.exists() and not settings.landing_dir.exists()


def test_the_glue_catalog_replaces_the_metastore_and_other_catalogs_are_refused(tmp_path):
    import pytest

    glue = spark_conf(Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_CATALOG": "Glue"}))
    assert (
        glue["spark.hadoop.hive.metastore.client.factory.class"]
        == "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
    )
    assert "spark.hadoop.javax.jdo.option.ConnectionURL" not in glue and "spark.hadoop.hive.metastore.uris" not in glue
    assert "spark.hadoop.hive.metastore.client.factory.class" not in spark_conf(
        Settings.from_env({"CDP_HOME": str(tmp_path)})
    )
    with pytest.raises(ValueError, match="CDP_CATALOG must be one of hive, glue, got 'unity'"):
        Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_CATALOG": "unity"})
