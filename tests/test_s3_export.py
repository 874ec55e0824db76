import socket

import pytest

from devstack.s3_server import LocalS3Server
from spark_jobs.activation.s3 import neutralise_formula, upload_atomically


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


def test_an_upload_is_atomic_and_survives_a_server_restart(s3_server, tmp_path):
    local = tmp_path / "part.csv"
    local.write_text("Email\nabc\n", encoding="utf-8")
    client = s3_server.client()

    upload_atomically(client, local, "exports", "aud/run1/add-00001.csv")

    keys = [o["Key"] for o in client.list_objects_v2(Bucket="exports")["Contents"]]
    assert keys == ["aud/run1/add-00001.csv"], "no temporary key may be left behind"
    body = client.get_object(Bucket="exports", Key=keys[0])["Body"].read().decode()
    assert body == "Email\nabc\n"

    # The embedded server keeps its objects in CDP_HOME across restarts.
    s3_server.snapshot()
    s3_server.stop()
    with LocalS3Server(s3_server.data_dir) as restarted:
        again = restarted.client().get_object(Bucket="exports", Key=keys[0])["Body"].read().decode()
    assert again == body


def test_a_local_s3_port_already_taken_is_a_clear_error(tmp_path):
    """Another clone's server on the port would answer the readiness probe and take this run's
    exports; starting must refuse instead."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RuntimeError, match=r"port .* is in use"):
            LocalS3Server(tmp_path / "s3", port=taken.getsockname()[1]).start()


def test_a_delta_table_written_through_s3a_survives_a_server_restart(s3_server):
    """s3a:// writes empty "directory marker" objects (``table/_delta_log/``) beside the files
    under them; the on-disk copy of the server keeps the files and leaves the markers out."""
    client = s3_server.client()
    client.create_bucket(Bucket="lake")
    client.put_object(Bucket="lake", Key="warehouse/gold.db/t/_delta_log/", Body=b"")
    client.put_object(Bucket="lake", Key="warehouse/gold.db/t/_delta_log/00000000000000000000.json", Body=b"{}")
    s3_server.snapshot()
    s3_server.stop()
    with LocalS3Server(s3_server.data_dir) as restarted:
        keys = [o["Key"] for o in restarted.client().list_objects_v2(Bucket="lake")["Contents"]]
    assert keys == ["warehouse/gold.db/t/_delta_log/00000000000000000000.json"]
