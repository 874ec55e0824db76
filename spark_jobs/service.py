"""The Spark service: one long-running Spark application that every step, dbt and BI tools use.

It is Spark's Thrift server (HiveServer2: JDBC/ODBC for BI tools, ``beeline``, dbt's ``thrift``
method) with the Spark Connect plugin (gRPC: the jobs and dbt's ``session`` method, through
``CDP_SPARK_REMOTE``), both over the one metastore and warehouse of :func:`spark_conf`. One JVM
for the whole pipeline instead of one per step; and since the metastore has a single user (this
service), a BI query and a run no longer exclude each other.

    python -m spark_jobs.service start|stop|status

On a cluster this is the same command with ``CDP_SPARK_MASTER`` pointing at the cluster: the
service runs on the driver node (like a Databricks SQL warehouse with Databricks Connect).

Security: neither protocol authenticates by default, so both bind to 127.0.0.1. Binding them to
another address is refused unless HiveServer2 authentication (``CDP_SQL_AUTHENTICATION``: LDAP or
KERBEROS, with Hive's own ``hive.server2.authentication.*`` settings passed through
``CDP_SQL_HIVE_CONF``) and Spark Connect's pre-shared token (``SPARK_CONNECT_AUTHENTICATE_TOKEN``)
are both configured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from spark_jobs.settings import Settings
from spark_jobs.spark import extra_conf, resolved_jars, spark_conf

log = logging.getLogger(__name__)

THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
# The jars of Delta (and of s3a://: hadoop-aws and the AWS SDK bundle) that pyspark's own jars/
# lacks. They go on the driver's class path: passed as spark.jars, closing the first JDBC
# session closes their class loader (HIVE-22989) and Delta breaks for the whole service.
# Delta's older jackson/parquet/hadoop must not shadow Spark's.
DRIVER_CLASS_PATH_JARS = (
    "delta-",
    "unitycatalog-",
    "jackson-datatype-jdk8",
    "javax.annotation-api",
    "hadoop-aws-",
    "bundle-",
    "analyticsaccelerator-s3-",
    "wildfly-openssl-",
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
START_TIMEOUT_S = 180


class ServiceError(RuntimeError):
    """The service cannot start, or is not there."""


class PortTakenError(ServiceError):
    """Another program took a port while the service started (a port is only ours once the
    JVM binds it, seconds after it was found free)."""


@dataclass(frozen=True)
class Service:
    settings: Settings

    @property
    def folder(self) -> Path:
        return self.settings.home / "spark-service"

    @property
    def log_file(self) -> Path:
        return self.folder / "service.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "service.pid"

    @property
    def ports_file(self) -> Path:
        """The ports the running service listens on (they may have been picked at start)."""
        return self.folder / "ports.json"

    def running_ports(self) -> tuple[int, int] | None:
        """(connect, sql) of this home's service if it is running and listening."""
        try:
            ports = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return None
        if self.pid() is None:
            return None
        connect, sql = int(ports["connect"]), int(ports["sql"])
        up = all(port_open(self.settings.service_host, p) for p in (connect, sql))
        return (connect, sql) if up else None

    def adopt_running(self) -> Service:
        """This service with the ports of the one running for the same home, if any."""
        ports = self.running_ports()
        if ports is None:
            return self
        return Service(replace(self.settings, connect_port=ports[0], sql_port=ports[1]))

    def with_free_ports(self) -> Service:
        """Port 0 in the settings: pick free ones (tests run their own service beside yours)."""
        connect = self.settings.connect_port or free_port()
        sql = self.settings.sql_port or free_port()
        return Service(replace(self.settings, connect_port=connect, sql_port=sql))

    @property
    def remote(self) -> str:
        """The Spark Connect URL clients use (``CDP_SPARK_REMOTE``)."""
        host = "localhost" if self.settings.service_host in LOOPBACK else self.settings.service_host
        return f"sc://{host}:{self.settings.connect_port}"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.settings.service_host}:{self.settings.sql_port}/default"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def is_up(self) -> bool:
        """This home's service runs and both ports accept connections (the Thrift server opens
        its port last)."""
        return self.running_ports() == self.ports()

    def ports(self) -> tuple[int, int]:
        return self.settings.connect_port, self.settings.sql_port

    def command(self) -> list[str]:
        return [str(spark_home() / "bin" / "spark-submit"), *submit_arguments(self.settings, self.folder)]

    def start(self, timeout_s: float = START_TIMEOUT_S, environ: Mapping[str, str] | None = None) -> str:
        """Start the service unless it is up; returns the Connect URL. A port another program
        holds is a clear error, not a hang. ``environ`` (default: this process's) is what the
        service inherits, AWS credentials for s3a:// included."""
        if self.running_ports() == self.ports():
            return self.remote
        check_binding_allowed(self.settings)
        for port in self.ports():
            if port_open(self.settings.service_host, port):
                raise ServiceError(
                    f"port {port} on {self.settings.service_host} is in use by another program (or the Spark "
                    "service of another CDP_HOME); set CDP_CONNECT_PORT / CDP_SQL_PORT to free ports, or 0"
                )
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "checkpoints").mkdir(exist_ok=True)
        self.settings.metastore_dir.mkdir(parents=True, exist_ok=True)
        ensure_jars(self.settings)
        environment = service_environment(self.settings, environ)
        log.info("starting the Spark service (Connect %s, JDBC %s); log %s", self.remote, self.jdbc_url, self.log_file)
        started = time.monotonic()
        with self.log_file.open("ab") as out:
            process = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env=environment,
                cwd=self.settings.metastore_dir, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        self.ports_file.write_text(json.dumps({"connect": self.settings.connect_port, "sql": self.settings.sql_port}))
        while not all(port_open(self.settings.service_host, port) for port in self.ports()):
            if process.poll() is not None:
                error = PortTakenError if "Address already in use" in tail(self.log_file) else ServiceError
                raise error(
                    f"the Spark service exited with {process.returncode}: see {self.log_file}\n{tail(self.log_file)}"
                )
            if time.monotonic() - started > timeout_s:
                self.stop()
                raise ServiceError(f"the Spark service did not listen within {timeout_s:.0f} s: see {self.log_file}")
            time.sleep(0.25)
        # An open port is not enough: another program may have taken it while the JVM started,
        # and the service then fails to bind it and stops, leaving its clients to retry.
        taken = [port for port in self.ports() if listens(process.pid, port) is False]
        if taken:
            self.stop()
            raise PortTakenError(
                f"port {taken[0]} was taken by another program while the Spark service started: see {self.log_file}"
            )
        log.info("Spark service up in %.1f s (pid %d)", time.monotonic() - started, process.pid)
        return self.remote

    def stop(self, timeout_s: float = 60) -> bool:
        """Stop the service (SIGTERM to its process group, then SIGKILL); False if none ran."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.25)
        if self.pid() is not None:
            log.warning("the Spark service did not stop in %.0f s: killing it", timeout_s)
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.ports_file.unlink(missing_ok=True)
        log.info("Spark service stopped")
        return True


def process_alive(pid: int) -> bool:
    """The process runs. An exited process that its parent has not reaped yet (a zombie: a
    service this process started and stopped) still answers ``kill(pid, 0)``, so it is reaped
    here when it is our child, and its state is read when it is not."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill(pid, 0) is the answer
    return state != "Z"


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def start_on_free_ports(service: Service, environ: Mapping[str, str] | None = None, attempts: int = 3) -> Service:
    """Start ``service`` with free ports for those set to 0 and return it with its ports. When
    another program takes a picked port while the JVM starts, start again on other ports."""
    for attempt in range(1, attempts + 1):
        candidate = service.with_free_ports()
        try:
            candidate.start(environ=environ)
            return candidate
        except PortTakenError as error:
            picked = 0 in service.ports()
            if not picked or attempt == attempts:
                raise
            log.warning("%s; starting again on other ports (attempt %d of %d)", error, attempt + 1, attempts)
    raise AssertionError("unreachable")


# Ports from here up to the ephemeral range are picked for our servers: the system never gives
# them to outgoing connections as source ports, which a port from bind(0) can be, by any
# process, between the moment it was found free and the moment our server binds it.
PICKED_PORTS_FROM = 20000


def ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152  # IANA's dynamic range, macOS's default


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, below the ephemeral range where possible."""
    import random

    pick = random.SystemRandom()  # not the `random` a test may have seeded: workers would collide
    below = ephemeral_ports_start() - 1
    for _ in range(100 if below > PICKED_PORTS_FROM + 1000 else 0):
        port = pick.randint(PICKED_PORTS_FROM, below)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listens(pid: int, port: int) -> bool | None:
    """The process ``pid`` (or a process it started) listens on TCP ``port``; None where the
    system does not tell (no /proc)."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()  # sl local_address rem_address st ... inode
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                listening.add(f"socket:[{fields[9]}]")
    if not Path("/proc/net/tcp").exists():
        return None
    return any(listening & socket_links(process) for process in process_tree(pid))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                tree += [int(child) for child in (task / "children").read_text().split()]
        index += 1
    return tree


def socket_links(pid: int) -> set[str]:
    links = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        with contextlib.suppress(OSError):
            links.add(os.readlink(fd))
    return links


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def check_binding_allowed(settings: Settings) -> None:
    """Loopback is the default; any other address needs authentication on both protocols."""
    if settings.service_host in LOOPBACK:
        return
    missing = []
    if settings.sql_authentication.upper() not in ("LDAP", "KERBEROS"):
        missing.append("CDP_SQL_AUTHENTICATION=LDAP or KERBEROS (with its hive.server2.* settings)")
    if not os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN"):
        missing.append("SPARK_CONNECT_AUTHENTICATE_TOKEN (Spark Connect's pre-shared token; clients need TLS)")
    if missing:
        raise ServiceError(
            f"refusing to bind the Spark service to {settings.service_host}: neither JDBC nor Spark Connect "
            f"authenticates by default. Set {' and '.join(missing)}, or keep CDP_SERVICE_HOST=127.0.0.1."
        )


def ensure_jars(settings: Settings) -> None:
    """The Delta (and hadoop-aws) jars must be on local disk before the driver class path can
    name them. On a fresh machine, one short local Spark process lets Ivy fetch them from Maven
    Central."""
    if resolved_jars(settings) is not None:
        return
    log.info(
        "fetching the Delta%s jars from Maven Central (first start only)",
        " and S3" if settings.object_store_urls else "",
    )
    code = (
        "from spark_jobs.settings import Settings; from spark_jobs.spark import build_session; "
        "build_session(Settings.from_env(), 'cdp-fetch-jars', {'spark.sql.catalogImplementation': 'in-memory'}).stop()"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "CDP_SPARK_REMOTE")}
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**environment, **settings.to_env(), "CDP_SPARK_REMOTE": ""}
    )
    if resolved_jars(settings) is None:
        raise ServiceError("the Delta jars could not be resolved from Maven Central")


def driver_class_path(settings: Settings) -> str:
    jars = (resolved_jars(settings) or "").split(",")
    paths = [urlparse(jar).path for jar in jars if jar]
    return ":".join(p for p in paths if Path(p).name.split("_", 1)[-1].startswith(DRIVER_CLASS_PATH_JARS))


# Spark's log at the service's level; the Thrift server's sessions and statements stay at INFO
# (who queried what, for BI tools' audit), as do the Connect server's start and stop.
LOG4J2_PROPERTIES = """\
rootLogger.level = {level}
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
logger.thriftserver.name = org.apache.spark.sql.hive.thriftserver
logger.thriftserver.level = info
logger.connect.name = org.apache.spark.sql.connect.service.SparkConnectServer
logger.connect.level = info
"""


def write_log_config(settings: Settings, folder: Path) -> Path:
    path = folder / "log4j2.properties"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(LOG4J2_PROPERTIES.format(level=settings.spark_service_log_level.lower()))
    return path


# Hive expands ${hive.session.id} itself: one folder per session, which Hive removes when the
# session closes (a shared folder would go with the first JDBC session that closes).
HIVE_SESSION_RESOURCES = "${hive.session.id}_resources"


def submit_arguments(settings: Settings, folder: Path) -> list[str]:
    conf = spark_conf(settings)
    log_config = write_log_config(settings, folder)
    java_options = conf.get("spark.driver.extraJavaOptions", "")
    conf["spark.driver.extraJavaOptions"] = f"{java_options} -Dlog4j2.configurationFile={log_config.as_uri()}".strip()
    for key in ("spark.jars", "spark.jars.packages", "spark.master", "spark.driver.memory"):
        conf.pop(key, None)
    conf.update(
        {
            "spark.plugins": CONNECT_PLUGIN,
            "spark.connect.grpc.binding.address": settings.service_host,
            "spark.connect.grpc.binding.port": str(settings.connect_port),
            "spark.checkpoint.dir": settings.checkpoint_dir or (folder / "checkpoints").as_uri(),
            # pyspark 4.2.0 hangs on Arrow-optimised Python UDFs over a file scan (SPARK-58241).
            "spark.sql.execution.pythonUDF.arrow.enabled": "false",
            # HiveServer2 settings travel as spark.hadoop.hive.server2.* (Spark hands them to Hive).
            "spark.hadoop.hive.server2.thrift.bind.host": settings.service_host,
            "spark.hadoop.hive.server2.thrift.port": str(settings.sql_port),
            "spark.hadoop.hive.server2.authentication": settings.sql_authentication.upper(),
            # Hive's session folders in the state folder, not under /tmp (shared by every home):
            # the service's own session is never closed, which left a folder behind per start.
            "spark.hadoop.hive.exec.local.scratchdir": str(settings.scratch_dir / "hive"),
            "spark.hadoop.hive.downloaded.resources.dir": str(settings.scratch_dir / "hive" / HIVE_SESSION_RESOURCES),
            "spark.hadoop.hive.server2.logging.operation.log.location": str(folder / "operation_logs"),
            "spark.ui.enabled": "false",
        }
    )
    for pair in shlex.split(settings.sql_hive_conf):
        key, _, value = pair.partition("=")
        conf[f"spark.hadoop.{key}"] = value
    if not settings.spark_master.startswith("local"):
        conf.update(cluster_conf(settings, folder))
    conf.update(extra_conf(settings))  # the user's settings win
    arguments = ["--class", THRIFT_SERVER_CLASS, "--name", "cdp-spark-service", "--master", settings.spark_master]
    arguments += ["--driver-memory", settings.spark_service_memory, "--driver-class-path", driver_class_path(settings)]
    for key, value in sorted(conf.items()):
        arguments += ["--conf", f"{key}={value}"]
    return arguments


def cluster_conf(settings: Settings, folder: Path) -> dict[str, str]:
    """What the executors of a cluster need from the service (its driver): the jars the driver
    has on its class path, at the same paths on every node (the image the nodes run, or a
    shared mount); the job code as a zip built from this checkout (``spark.submit.pyFiles``:
    the pandas UDFs of identity resolution import ``spark_jobs`` on the executors); and
    Spark's UI and REST API, to see where the tasks ran."""
    return {
        "spark.executor.extraClassPath": driver_class_path(settings),
        "spark.submit.pyFiles": str(code_bundle(folder)),
        "spark.ui.enabled": "true",
    }


def code_bundle(folder: Path) -> Path:
    """``spark_jobs`` (code and its YAML/SQL resources, no caches) as a zip for the executors."""
    import spark_jobs

    package = Path(spark_jobs.__file__).parent
    bundle = folder / "spark_jobs.zip"
    temporary = bundle.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(package.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(package.parent).as_posix())
    temporary.replace(bundle)
    return bundle


def service_environment(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    base = os.environ if environ is None else environ
    environment = {k: v for k, v in base.items() if k not in ("SPARK_REMOTE", "PYSPARK_SUBMIT_ARGS")}
    environment.update(
        {
            "SPARK_HOME": str(spark_home()),
            "PYSPARK_PYTHON": sys.executable,  # UDF workers import the project from this venv
            "SPARK_LOG_DIR": str(settings.home / "spark-service"),
            "HIVE_SERVER2_THRIFT_BIND_HOST": settings.service_host,
            "HIVE_SERVER2_THRIFT_PORT": str(settings.sql_port),
        }
    )
    return environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start, stop or check the Spark service (Thrift + Connect).")
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Service(Settings.from_env()).adopt_running()
    try:
        if args.action == "start":
            service = start_on_free_ports(service)
            print(f"Spark service up: Spark Connect {service.remote}, JDBC {service.jdbc_url}")
        elif args.action == "stop":
            print("stopped" if service.stop() else "no Spark service was running")
        else:
            up = service.is_up()
            print(f"Spark service {'up' if up else 'down'}: Spark Connect {service.remote}, JDBC {service.jdbc_url}")
            return 0 if up else 1
    except ServiceError as error:
        print(f"cdp: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
