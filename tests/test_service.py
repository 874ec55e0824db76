"""The Spark service's launch decisions (spark_jobs/service.py); the e2e tests run the real one."""

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import spark_jobs.service
from spark_jobs.service import (
    DRIVER_CLASS_PATH_JARS,
    PICKED_PORTS_FROM,
    PortTakenError,
    Service,
    ServiceError,
    check_binding_allowed,
    ephemeral_ports_start,
    free_port,
    start_on_free_ports,
    submit_arguments,
)
from spark_jobs.settings import Settings


def settings(tmp_path, **env) -> Settings:
    return Settings.from_env({"CDP_HOME": str(tmp_path), **env})


def conf_of(arguments: list[str]) -> dict[str, str]:
    pairs = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--conf"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_service_is_the_thrift_server_with_connect_on_loopback_and_delta_on_the_driver_class_path(tmp_path):
    arguments = submit_arguments(settings(tmp_path, CDP_SQL_PORT="10001", CDP_CONNECT_PORT="15003"), tmp_path)
    conf = conf_of(arguments)
    assert arguments[arguments.index("--class") + 1] == "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
    assert conf["spark.plugins"] == "org.apache.spark.sql.connect.SparkConnectPlugin"
    assert (conf["spark.connect.grpc.binding.address"], conf["spark.connect.grpc.binding.port"]) == (
        "127.0.0.1",
        "15003",
    )
    assert (conf["spark.hadoop.hive.server2.thrift.bind.host"], conf["spark.hadoop.hive.server2.thrift.port"]) == (
        "127.0.0.1",
        "10001",
    )
    # Delta as spark.jars would break the whole service when the first JDBC session closes.
    assert not {"spark.jars", "spark.jars.packages"} & set(conf)
    class_path = arguments[arguments.index("--driver-class-path") + 1]
    for jar in filter(None, class_path.split(":")):
        assert jar.rsplit("/", 1)[-1].split("_", 1)[-1].startswith(DRIVER_CLASS_PATH_JARS), jar
    assert conf["spark.sql.execution.pythonUDF.arrow.enabled"] == "false"  # SPARK-58241
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    # Spark's log at WARN (INFO: a line per task), the Thrift server's statements still logged.
    java_options = conf["spark.driver.extraJavaOptions"]
    assert "-Dderby.system.home=" in java_options
    log_config = Path(java_options.split("-Dlog4j2.configurationFile=file://")[1].split()[0])
    assert log_config.parent == tmp_path
    assert "rootLogger.level = warn\n" in log_config.read_text()
    assert "logger.thriftserver.level = info\n" in log_config.read_text()


def test_hive_keeps_its_session_folders_in_the_state_folder_not_in_tmp(tmp_path):
    """Hive's defaults are under java.io.tmpdir, shared by every home; the service's own session
    is never closed, so each start left a /tmp/<session>_resources folder behind."""
    home = settings(tmp_path)
    conf = conf_of(submit_arguments(home, tmp_path / "spark-service"))
    assert conf["spark.hadoop.hive.exec.local.scratchdir"] == str(home.scratch_dir / "hive")
    # One folder per session (Hive expands the id and removes the folder when the session closes).
    assert conf["spark.hadoop.hive.downloaded.resources.dir"] == str(
        home.scratch_dir / "hive" / "${hive.session.id}_resources"
    )
    assert conf["spark.hadoop.hive.server2.logging.operation.log.location"] == str(
        tmp_path / "spark-service" / "operation_logs"
    )


def test_another_address_is_refused_unless_both_protocols_authenticate(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", raising=False)
    check_binding_allowed(settings(tmp_path))  # loopback: fine
    with pytest.raises(ServiceError, match=r"CDP_SQL_AUTHENTICATION=LDAP or KERBEROS .* SPARK_CONNECT_AUTHENTICATE"):
        check_binding_allowed(settings(tmp_path, CDP_SERVICE_HOST="0.0.0.0"))
    with pytest.raises(ServiceError, match="SPARK_CONNECT_AUTHENTICATE_TOKEN"):
        check_binding_allowed(settings(tmp_path, CDP_SERVICE_HOST="0.0.0.0", CDP_SQL_AUTHENTICATION="LDAP"))
    monkeypatch.setenv("SPARK_CONNECT_AUTHENTICATE_TOKEN", "not-a-real-token")
    check_binding_allowed(settings(tmp_path, CDP_SERVICE_HOST="0.0.0.0", CDP_SQL_AUTHENTICATION="LDAP"))


def test_a_port_another_program_holds_is_a_clear_error_not_a_hang(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = Service(settings(tmp_path, CDP_CONNECT_PORT=str(port), CDP_SQL_PORT="0")).with_free_ports()
        with pytest.raises(ServiceError, match=rf"port {port} on 127.0.0.1 is in use by another program"):
            service.start()
    assert not service.pid_file.exists()


def test_free_ports_are_picked_for_port_zero_and_a_running_service_is_found_by_its_home(tmp_path):
    service = Service(settings(tmp_path, CDP_CONNECT_PORT="0", CDP_SQL_PORT="0")).with_free_ports()
    connect, sql = service.ports()
    assert connect and sql and connect != sql
    assert service.remote == f"sc://localhost:{connect}"
    assert service.running_ports() is None and not service.is_up()  # nothing started for this home
    assert service.adopt_running() == service


def test_a_connect_client_copies_plans_nested_deeper_than_protobufs_default_limit():
    """pyspark copies each child relation into its parent; upb refuses copies deeper than 100
    levels unless the client allows them (the identity job's plans reach ~100 at 1,000 customers)."""
    from pyspark.sql.connect import proto

    from spark_jobs.spark import allow_deep_plans

    allow_deep_plans()
    relation = proto.Relation(read=proto.Read(named_table=proto.Read.NamedTable(unparsed_identifier="bronze.t")))
    for _ in range(80):  # 80 projections: about 160 message levels
        relation = proto.Relation(project=proto.Project(input=relation))
    command = proto.Command(checkpoint_command=proto.CheckpointCommand(relation=relation, local=True))
    depth, node = 0, command.checkpoint_command.relation
    while node.HasField("project"):
        depth, node = depth + 1, node.project.input
    assert depth == 80 and node.read.named_table.unparsed_identifier == "bronze.t"


def test_a_stopped_service_that_was_our_child_is_not_taken_for_a_running_one():
    """A service this process started and stopped is a zombie until reaped, and a zombie
    answers kill(pid, 0): stopping it must not wait out the timeout for it."""
    import subprocess
    import time

    from spark_jobs.service import process_alive

    running = subprocess.Popen(["sleep", "30"])
    exited = subprocess.Popen(["true"])
    time.sleep(0.5)  # exited, not reaped: a zombie
    try:
        assert process_alive(running.pid)
        assert not process_alive(exited.pid)
    finally:
        running.kill()
        running.wait()


def test_an_s3_lakehouse_puts_hadoop_aws_and_the_aws_sdk_on_the_driver_class_path_not_an_older_hadoop():
    from spark_jobs.service import DRIVER_CLASS_PATH_JARS

    resolved = [  # what Ivy resolves for Delta + hadoop-aws (names as in the Ivy cache)
        "org.apache.hadoop_hadoop-aws-3.5.0.jar",
        "software.amazon.awssdk_bundle-2.35.4.jar",
        "software.amazon.s3.analyticsaccelerator_analyticsaccelerator-s3-1.3.1.jar",
        "io.delta_delta-spark_4.2_2.13-4.4.0.jar",
        "org.apache.hadoop_hadoop-client-runtime-3.4.2.jar",
        "org.apache.hadoop_hadoop-client-api-3.4.2.jar",
        "org.apache.parquet_parquet-hadoop-1.16.0.jar",
    ]
    kept = [jar for jar in resolved if jar.split("_", 1)[-1].startswith(DRIVER_CLASS_PATH_JARS)]
    assert kept == resolved[:4]


def test_on_a_cluster_the_service_hands_its_executors_the_jars_the_code_and_a_ui(tmp_path):
    import zipfile

    local = conf_of(submit_arguments(settings(tmp_path), tmp_path))
    assert not {"spark.executor.extraClassPath", "spark.submit.pyFiles"} & set(local)
    assert local["spark.ui.enabled"] == "false"

    arguments = submit_arguments(settings(tmp_path, CDP_SPARK_MASTER="spark://head:7077"), tmp_path)
    conf = conf_of(arguments)
    assert arguments[arguments.index("--master") + 1] == "spark://head:7077"
    assert conf["spark.executor.extraClassPath"] == arguments[arguments.index("--driver-class-path") + 1]
    assert conf["spark.ui.enabled"] == "true"
    with zipfile.ZipFile(conf["spark.submit.pyFiles"]) as bundle:
        names = bundle.namelist()
    assert "spark_jobs/identity/comparisons.py" in names and "spark_jobs/__init__.py" in names
    assert any(name.endswith(".yml") or name.endswith(".yaml") for name in names), "the contracts travel too"
    assert not [name for name in names if "__pycache__" in name]


def test_the_local_service_interprets_plans_only_when_asked(tmp_path):
    interpreted = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
    local = conf_of(submit_arguments(settings(tmp_path, CDP_LOCAL_CODEGEN="false"), tmp_path))
    assert {key: local.get(key) for key in interpreted} == interpreted
    for generated in (
        settings(tmp_path),
        settings(tmp_path, CDP_LOCAL_CODEGEN="false", CDP_SPARK_MASTER="spark://head:7077"),
    ):
        conf = conf_of(submit_arguments(generated, tmp_path))
        assert not set(interpreted) & set(conf), "Spark's default: code generation"
    # and a user's own setting wins
    asked = settings(tmp_path, CDP_LOCAL_CODEGEN="false", CDP_SPARK_CONF="spark.sql.codegen.wholeStage=true")
    conf = conf_of(submit_arguments(asked, tmp_path))
    assert (conf["spark.sql.codegen.wholeStage"], conf["spark.sql.codegen.factoryMode"]) == ("true", "NO_CODEGEN")


def test_sample_runs_of_at_most_1000_customers_interpret_plans_unless_told_otherwise():
    from devstack.runner import interpret_small_samples

    for customers, preset, expected in (
        (60, None, "false"),
        (1_000, None, "false"),
        (1_001, None, None),
        (100_000, None, None),
        (60, "true", "true"),
        (100_000, "false", "false"),
    ):
        environ = {} if preset is None else {"CDP_LOCAL_CODEGEN": preset}
        interpret_small_samples(customers, environ)
        assert environ.get("CDP_LOCAL_CODEGEN") == expected, (customers, preset)


def test_extra_spark_settings_come_last_and_bad_ones_are_refused(tmp_path):
    conf = conf_of(
        submit_arguments(
            settings(
                tmp_path,
                CDP_SPARK_MASTER="spark://head:7077",
                CDP_SPARK_CONF="spark.ui.enabled=false  spark.executor.memory=6g",
            ),
            tmp_path,
        )
    )
    assert (conf["spark.ui.enabled"], conf["spark.executor.memory"]) == ("false", "6g")
    with pytest.raises(ValueError, match=r"CDP_SPARK_CONF: 'executor\.memory=6g' is not a spark"):
        submit_arguments(settings(tmp_path, CDP_SPARK_CONF="executor.memory=6g"), tmp_path)


def test_picked_ports_are_free_and_below_the_range_outgoing_connections_take_theirs_from():
    ports = {free_port() for _ in range(20)}
    assert len(ports) >= 19, "picked at random, not one after the other"
    for port in ports:
        assert PICKED_PORTS_FROM <= port < ephemeral_ports_start(), port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # free: binds


# Stands in for the Spark service's JVM: listens on the Connect port, then on the SQL port;
# fails like HiveServer2 when that one is taken (the JVM then stops a moment later).
FAKE_SERVICE = """
import socket, sys, time
connect, sql = int(sys.argv[1]), int(sys.argv[2])
listening = []
for port in (connect, sql):
    time.sleep(0.5)
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", port))
    except OSError:
        print("java.net.BindException: Address already in use", flush=True)
        time.sleep(5)
        sys.exit(1)
    server.listen()
    listening.append(server)
time.sleep(600)
"""


def test_a_port_taken_while_the_service_starts_is_found_and_the_service_starts_again_on_others(tmp_path, monkeypatch):
    """The ports are free when picked, but the JVM binds them seconds later: another program
    that listens on one in between must not pass for the service (whose clients would then
    retry against a service that stopped), and picked ports are picked again."""
    thieves: list[socket.socket] = []

    def command(self: Service) -> list[str]:
        if not thieves:  # the first start: another program takes the SQL port meanwhile
            thief = socket.socket()
            thief.bind(("127.0.0.1", self.settings.sql_port))
            thief.listen()
            thieves.append(thief)
        return [sys.executable, "-c", FAKE_SERVICE, str(self.settings.connect_port), str(self.settings.sql_port)]

    monkeypatch.setattr(Service, "command", command)
    monkeypatch.setattr(spark_jobs.service, "ensure_jars", lambda settings: None)
    configured = Service(settings(tmp_path, CDP_CONNECT_PORT="0", CDP_SQL_PORT="0"))
    try:
        with pytest.raises(PortTakenError, match="was taken by another program while the Spark service started"):
            configured.with_free_ports().start(timeout_s=30)
        assert configured.pid() is None, "the half-started service was stopped"

        service = start_on_free_ports(configured)
        assert service.is_up() and len(thieves) == 1
        assert service.settings.sql_port != thieves[0].getsockname()[1]
    finally:
        for thief in thieves:
            thief.close()
        configured.stop()
    assert not configured.is_up()


# A process of its own: pyspark refuses a Connect session in a process that holds a local
# Spark (the unit tests' session in this worker), and marks a process that made one as a
# Connect client for good.
GIVE_UP_PROBE = """
import json, sys, time
from spark_jobs.settings import Settings
from spark_jobs.spark import build_session
settings = Settings.from_env({"CDP_HOME": sys.argv[1], "CDP_SPARK_REMOTE": sys.argv[2]})
session = build_session(settings, "retries")
(policy,) = session.client.get_retry_policies()
state, waited_ms = policy.to_state(), 0
while (wait := state.next_attempt()) is not None:
    waited_ms += wait
session.client.set_retry_policies([])  # no retries now: the request fails at once
started = time.monotonic()
try:
    session.sql("select 1").collect()
    error = None
except Exception as failure:
    error = str(failure)[:300]
print(json.dumps({"waited_ms": waited_ms, "error": error, "failed_in_s": time.monotonic() - started}))
"""


def test_a_job_gives_up_on_a_stopped_service_in_minutes_not_after_ten(tmp_path):
    """Spark Connect's default retries wait 10+ minutes per request; a job's session retries
    about 2 minutes in all (the waits its policy gives, summed), and the session is built
    without a request (which would retry with the default policy)."""
    import json

    port = free_port()  # nothing listens there
    done = subprocess.run(
        [sys.executable, "-c", GIVE_UP_PROBE, str(tmp_path), f"sc://localhost:{port}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert 60_000 <= probe["waited_ms"] <= 200_000, probe
    assert probe["error"] and re.search(r"UNAVAILABLE|Connection refused|failed to connect", probe["error"]), probe
    assert probe["failed_in_s"] < 30, probe
