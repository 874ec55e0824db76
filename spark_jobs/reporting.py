"""Report results to Dagster through Pipes when launched by Dagster, to the log otherwise.

The same job module therefore runs unchanged under Dagster (locally as a subprocess, on a
cluster through a Pipes client) and under a plain ``spark-submit``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from spark_jobs.plots import Markdown
from spark_jobs.settings import Settings

log = logging.getLogger(__name__)


class Reporter(Protocol):
    to_dagster: bool  # results reach Dagster, so a failed check must not also fail the process

    def materialized(self, asset_key: str, metadata: Mapping[str, Any]) -> None: ...

    def checked(
        self, asset_key: str, check_name: str, passed: bool, metadata: Mapping[str, Any], severity: str = "ERROR"
    ) -> None: ...


class LogReporter:
    to_dagster = False

    def materialized(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        log.info("materialized %s: %s", asset_key, loggable(metadata))

    def checked(
        self, asset_key: str, check_name: str, passed: bool, metadata: Mapping[str, Any], severity: str = "ERROR"
    ) -> None:
        log.log(
            logging.INFO if passed else logging.WARNING if severity == "WARN" else logging.ERROR,
            "check %s on %s %s: %s",
            check_name,
            asset_key,
            "passed" if passed else "FAILED",
            loggable(metadata),
        )


def loggable(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata for a log line: a chart is named, not printed (it is kilobytes of base64)."""
    return {key: "<chart>" if isinstance(value, Markdown) else value for key, value in metadata.items()}


def to_pipes_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Pipes takes raw scalars as they are; nested values must be declared as JSON, charts as
    Markdown."""

    def typed(value: Any) -> Any:
        if isinstance(value, Markdown):
            return {"raw_value": str(value), "type": "md"}
        if isinstance(value, (dict, list, tuple)):
            return {"raw_value": value, "type": "json"}
        return value

    return {key: typed(value) for key, value in metadata.items()}


class PipesReporter:
    """Reports through the Pipes context; one message at a time, since a job's threads (the
    sources of an ingestion step, the syncs) report side by side and Pipes writes each message
    to one shared file."""

    to_dagster = True

    def __init__(self, pipes: Any) -> None:
        self._pipes = pipes
        self._lock = threading.Lock()

    def materialized(self, asset_key: str, metadata: Mapping[str, Any]) -> None:
        LogReporter().materialized(asset_key, metadata)
        with self._lock:
            self._pipes.report_asset_materialization(asset_key=asset_key, metadata=to_pipes_metadata(metadata))

    def checked(
        self, asset_key: str, check_name: str, passed: bool, metadata: Mapping[str, Any], severity: str = "ERROR"
    ) -> None:
        LogReporter().checked(asset_key, check_name, passed, metadata, severity)
        with self._lock:
            self._pipes.report_asset_check(
                asset_key=asset_key,
                check_name=check_name,
                passed=passed,
                severity=severity,
                metadata=to_pipes_metadata(metadata),
            )


def message_writer(messages_params: dict):
    """The Pipes message writer the launcher asked for: S3 when it names a bucket (a job run on
    EMR Serverless, whose output Dagster cannot read directly), else Pipes' default (a file or
    stdout of a local process)."""
    if "bucket" not in messages_params:
        return None
    import boto3
    from dagster_pipes import PipesS3MessageWriter

    from spark_jobs.settings import Settings

    endpoint = Settings.from_env().s3_endpoint_url or None
    return PipesS3MessageWriter(client=boto3.client("s3", endpoint_url=endpoint))


@contextmanager
def open_reporter() -> Iterator[Reporter]:
    from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

    loader = PipesEnvVarParamsLoader()
    if loader.is_dagster_pipes_process():
        writer = message_writer(loader.load_messages_params())
        with open_dagster_pipes(message_writer=writer) if writer else open_dagster_pipes() as pipes:
            yield PipesReporter(pipes)
    else:
        yield LogReporter()


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """The one log format of every job, CLI and benchmark."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


@contextmanager
def spark_job(app_name: str) -> Iterator[tuple[Any, Settings, Reporter]]:
    """What every job's main() starts with: logging, settings from the environment, a reporter
    (Pipes or log) and the configured SparkSession."""
    from spark_jobs.spark import build_session

    configure_logging()
    settings = Settings.from_env()
    with open_reporter() as reporter:
        yield build_session(settings, app_name), settings, reporter
