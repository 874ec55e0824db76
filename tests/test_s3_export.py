import csv
import io
import socket
from decimal import Decimal

import pytest

from devstack.s3_server import LocalS3Server
from spark_jobs.activation.s3_export import export_audience, neutralise_formula
from spark_jobs.settings import Settings


@pytest.fixture
def s3_server(tmp_path):
    with LocalS3Server(tmp_path / "s3-data") as server:
        server.ensure_bucket("exports")
        yield server


def test_formula_like_values_are_neutralised():
    assert [neutralise_formula(v) for v in ["=HYPERLINK(1)", "+1", "-2", "@SUM", "ann@x.com", 3, None]] == [
        "'=HYPERLINK(1)",
        "'+1",
        "'-2",
        "'@SUM",
        "ann@x.com",
        3,
        None,
    ]


def test_audience_is_exported_as_csv_and_survives_a_server_restart(fresh_database, s3_server, tmp_path, monkeypatch):
    spark = fresh_database
    for key, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    spark.createDataFrame(
        [
            ("cus_2", "bob@x.com", "=cmd()", 3, Decimal("30.00")),
            ("cus_1", "ann@x.com", "Ann", 2, Decimal("12.50")),
        ],
        "customer_id string, email string, first_name string, order_count bigint, total_spend decimal(14,2)",
    ).write.format("delta").saveAsTable("gold.sync_s3__test_audience")
    settings = Settings.from_env(
        {
            "CDP_HOME": str(tmp_path / "home"),
            "CDP_S3_ENDPOINT_URL": s3_server.endpoint_url,
            "CDP_EXPORT_BUCKET": "exports",
            "CDP_EXPORT_PREFIX": "aud",
        }
    )

    result = export_audience(spark, settings, "test_audience")

    assert (result.bucket, result.key, result.rows) == ("exports", "aud/test_audience/test_audience.csv", 2)
    client = s3_server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="exports")["Contents"]]
    assert keys == ["aud/test_audience/test_audience.csv"], "no temporary key may be left behind"
    body = client.get_object(Bucket="exports", Key=result.key)["Body"].read().decode()
    assert list(csv.reader(io.StringIO(body))) == [
        ["customer_id", "email", "first_name", "order_count", "total_spend"],
        ["cus_1", "ann@x.com", "Ann", "2", "12.50"],
        ["cus_2", "bob@x.com", "'=cmd()", "3", "30.00"],
    ]

    # The embedded server keeps its objects in CDP_HOME across restarts.
    s3_server.snapshot()
    s3_server.stop()
    with LocalS3Server(s3_server.data_dir) as restarted:
        again = restarted.client().get_object(Bucket="exports", Key=result.key)["Body"].read().decode()
    assert again == body


def test_a_local_s3_port_already_taken_is_a_clear_error(tmp_path):
    """Another clone's server on the port would answer the readiness probe and take this run's
    exports; starting must refuse instead."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match=r"port .* is in use"):
            LocalS3Server(tmp_path / "s3", port=taken.getsockname()[1]).start()
