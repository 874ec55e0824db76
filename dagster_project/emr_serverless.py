"""The same job modules on EMR Serverless: the job run request and the code bundle.

Locally a step is ``python -m <module> <args>`` through Dagster Pipes' subprocess client. With
``CDP_LAUNCHER=emr_serverless`` the step becomes a job run of the deployment's EMR Serverless
application (infra/terraform/modules/spark_runtime) through dagster-aws's
``PipesEMRServerlessClient``:

- the code: ``spark_jobs`` zipped from this checkout and uploaded once per content to
  ``s3://<CDP_PIPES_BUCKET>/<CDP_PIPES_PREFIX>/code/spark_jobs-<sha>.zip``, with a small entry
  point that runs the module as ``python -m`` would (:func:`upload_code`);
- the request (:func:`start_job_run_params`): the application and its execution role, the entry
  point with ``<module> <args>`` as arguments, the platform's Spark configuration as
  ``sparkSubmitParameters`` (the same ``spark_conf`` as everywhere, less what only a local
  Spark needs), the platform's settings as the driver's environment, and the job's logs in the
  deployment's CloudWatch log group;
- the results: Pipes messages through S3 under ``<CDP_PIPES_PREFIX>/messages``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.settings import Settings
from spark_jobs.spark import spark_conf

ENTRY_POINT = '''"""Runs a platform job module on EMR Serverless as `python -m <module> <args>` would."""
import runpy
import sys

module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
'''
# Spark settings that belong to a local Spark or to the service, never to a job run.
LOCAL_ONLY = (
    "spark.master",
    "spark.driver.host",
    "spark.driver.bindAddress",
    "spark.driver.memory",
    "spark.driver.extraJavaOptions",
    "spark.pyspark.python",
    "spark.jars",
    "spark.hadoop.javax.jdo.option.ConnectionURL",
    "spark.databricks.delta.snapshotPartitions",
)
# Settings a job run must not inherit from the machine that launches it.
LOCAL_SETTINGS = ("CDP_HOME", "CDP_LANDING_DIR", "CDP_LAKEHOUSE_DIR", "CDP_SPARK_REMOTE", "CDP_SPARK_MASTER")


class LauncherSettingsError(ValueError):
    """A setting the EMR Serverless launcher needs is missing."""


@dataclass(frozen=True)
class CodeBundle:
    zip_uri: str  # s3://.../spark_jobs-<sha>.zip
    entry_point_uri: str  # s3://.../run_module.py


def required(settings: Settings) -> None:
    missing = [
        env
        for env, value in (
            ("CDP_EMR_APPLICATION_ID", settings.emr_application_id),
            ("CDP_EMR_EXECUTION_ROLE_ARN", settings.emr_execution_role_arn),
            ("CDP_PIPES_BUCKET", settings.pipes_bucket),
            ("CDP_LAKEHOUSE_URL", settings.lakehouse_url),
        )
        if not value
    ]
    if missing:
        raise LauncherSettingsError(
            f"CDP_LAUNCHER=emr_serverless needs {', '.join(missing)} (terraform output -json settings gives them)"
        )


def upload_code(settings: Settings, s3) -> CodeBundle:
    """Zip ``spark_jobs`` and upload it under a name made of its content, with the entry point;
    an unchanged bundle is not uploaded again."""
    from spark_jobs.service import code_bundle

    prefix = f"{settings.pipes_prefix.strip('/')}/code"
    with tempfile.TemporaryDirectory() as folder:
        bundle = code_bundle(Path(folder))
        digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:16]
        zip_key, entry_key = f"{prefix}/spark_jobs-{digest}.zip", f"{prefix}/run_module.py"
        if not _exists(s3, settings.pipes_bucket, zip_key):
            s3.upload_file(str(bundle), settings.pipes_bucket, zip_key)
    s3.put_object(Bucket=settings.pipes_bucket, Key=entry_key, Body=ENTRY_POINT.encode())
    return CodeBundle(f"s3://{settings.pipes_bucket}/{zip_key}", f"s3://{settings.pipes_bucket}/{entry_key}")


def message_reader(settings: Settings, s3):
    """dagster-aws's S3 message reader, with each run's messages under
    ``<CDP_PIPES_PREFIX>/messages/`` (the reader's own default is a random prefix at the bucket's
    root, which the deployment's IAM policies do not open)."""
    from dagster_aws.pipes import PipesS3MessageReader

    prefix = f"{settings.pipes_prefix.strip('/')}/messages"

    class PrefixedS3MessageReader(PipesS3MessageReader):
        @contextmanager
        def get_params(self):
            with super().get_params() as params:
                yield {**params, "key_prefix": f"{prefix}/{params['key_prefix']}"}

    return PrefixedS3MessageReader(bucket=settings.pipes_bucket, client=s3)


def run_on_emr_serverless(context, settings: Settings, module: str, args: list[str]):
    """``python -m <module> <args>`` as a job run of the deployment's application, through
    dagster-aws's Pipes client: the context goes in the driver's environment, the messages come
    back through S3 under ``<CDP_PIPES_PREFIX>/messages/``."""
    import boto3
    from dagster_aws.pipes import PipesEMRServerlessClient

    required(settings)
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None)
    code = upload_code(settings, s3)
    pipes = PipesEMRServerlessClient(client=boto3.client("emr-serverless"), message_reader=message_reader(settings, s3))
    context.log.info(f"launching {module} on EMR Serverless application {settings.emr_application_id}")
    return pipes.run(context=context, start_job_run_params=start_job_run_params(settings, module, args, code))


def _exists(s3, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def job_spark_conf(settings: Settings) -> dict[str, str]:
    """The platform's Spark configuration for a job run: what ``spark_conf`` decides (Delta,
    catalog, warehouse, s3a), less what belongs to a local Spark. ``spark.jars.packages`` stays:
    EMR Serverless resolves it from Maven Central unless the image has the jars."""
    on_emr = dataclasses.replace(settings, spark_master="emr-serverless")  # a cluster: no local-only choices
    return {key: value for key, value in spark_conf(on_emr).items() if key not in LOCAL_ONLY}


def start_job_run_params(settings: Settings, module: str, args: list[str], code: CodeBundle) -> dict:
    """The StartJobRun request for ``python -m <module> <args>`` on the deployment's application.
    The Pipes client adds its own context and message settings to it."""
    required(settings)
    conf = job_spark_conf(settings)
    environment = {k: v for k, v in settings.to_env().items() if v and k not in LOCAL_SETTINGS}
    # The secrets themselves never travel: the job reads them from Secrets Manager by these ids.
    environment |= {k: v for k, v in os.environ.items() if k.startswith("CDP_") and k.endswith("_SECRET_ID") and v}
    conf.update({f"spark.emr-serverless.driverEnv.{k}": v for k, v in sorted(environment.items())})
    parameters = ["--py-files", code.zip_uri] + [f"--conf {shlex.quote(f'{k}={v}')}" for k, v in sorted(conf.items())]
    params = {
        "applicationId": settings.emr_application_id,
        "executionRoleArn": settings.emr_execution_role_arn,
        "name": f"cdp-{module.rsplit('.', 1)[-1]}",
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": code.entry_point_uri,
                "entryPointArguments": [module, *args],
                "sparkSubmitParameters": " ".join(parameters),
            }
        },
    }
    if settings.emr_log_group:
        params["configurationOverrides"] = {
            "monitoringConfiguration": {
                "cloudWatchLoggingConfiguration": {"enabled": True, "logGroupName": settings.emr_log_group}
            }
        }
    return params
