"""Resources shared by every domain: platform settings, the Pipes launcher for Spark jobs."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import dagster as dg

from spark_jobs.jobspec import JobSpec
from spark_jobs.settings import ENV_VARS, REPO_ROOT, Settings


class CdpSettingsResource(dg.ConfigurableResource):
    """Platform settings (see spark_jobs/settings.py and .env.example).

    Every field left unset falls back to its ``CDP_*`` environment variable, read when a run
    starts (never at import), and then to the embedded local default.
    """

    home: str | None = None
    landing_dir: str | None = None
    lakehouse_dir: str | None = None
    spark_master: str | None = None
    spark_driver_memory: str | None = None
    spark_shuffle_partitions: str | None = None
    hive_metastore_uris: str | None = None
    landing_url: str | None = None
    s3_endpoint_url: str | None = None
    export_bucket: str | None = None
    export_prefix: str | None = None

    def settings(self) -> Settings:
        overrides = {
            ENV_VARS[name][0]: value
            for name, value in self.model_dump().items()
            if name in ENV_VARS and value is not None
        }
        return Settings.from_env({**os.environ, **overrides})

    def job_env(self) -> dict[str, str]:
        """Environment for a Spark job process: the resolved settings, nothing implicit."""
        settings = self.settings()
        env = settings.to_env()
        if settings.spark_master.startswith("local"):
            env["SPARK_LOCAL_IP"] = "127.0.0.1"
        return env


def run_spark_job(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
    pipes: dg.PipesSubprocessClient,
    cdp_settings: CdpSettingsResource,
    module: str,
    args: Sequence[str] = (),
) -> dg.PipesClientCompletedInvocation:
    """Run ``python -m <module> <args>`` as its own Spark process, reporting back through Pipes.

    With ``CDP_SPARK_REMOTE`` set (./cdp sets it) the process is a Spark Connect client of the
    Spark service and holds no JVM. Without it the process starts its own Spark, and the Dagster process stays
    free of a JVM, which the embedded Derby metastore needs. With ``CDP_LAUNCHER=emr_serverless``
    the same module is a job run on EMR Serverless instead (dagster_project/emr_serverless.py).
    """
    if isinstance(context, dg.AssetCheckExecutionContext):
        context = context.op_execution_context  # Pipes sessions take op or asset contexts
    if cdp_settings.settings().launcher == "emr_serverless":
        from dagster_project.emr_serverless import run_on_emr_serverless

        return run_on_emr_serverless(context, cdp_settings.settings(), module, list(args))
    env = cdp_settings.job_env()
    return pipes.run(
        context=context,
        command=[sys.executable, "-m", module, *args],
        env=env,
        cwd=str(REPO_ROOT),
    )


def asset_key(path: str) -> dg.AssetKey:
    """``silver/identity_map`` -> the asset key the job reports under."""
    return dg.AssetKey(path.split("/"))


def asset_check_specs(spec: JobSpec) -> list[dg.AssetCheckSpec]:
    """The asset checks a job declares in its spec."""
    return [
        dg.AssetCheckSpec(c.name, asset=asset_key(c.asset), blocking=c.blocking, description=c.description)
        for c in spec.checks
    ]
