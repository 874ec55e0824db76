"""The EMR Serverless launcher without AWS: the code bundle it uploads and the job run request it
builds, started on the local AWS stand-in's EMR Serverless API (tests/aws_stand_in.py)."""

from __future__ import annotations

import io
import shlex
import zipfile

import boto3
import dagster as dg
import pytest
from dagster_pipes import decode_env_var

from dagster_project.emr_serverless import (
    ENTRY_POINT,
    LauncherSettingsError,
    start_job_run_params,
    upload_code,
)
from dagster_project.resources import CdpSettingsResource, run_spark_job
from spark_jobs.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/cdp-dev-spark-jobs"


def client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture
def deployment(aws_stand_in, tmp_path, monkeypatch):
    """(settings of a deployment as terraform's settings output gives them, S3 client, EMR client)."""
    s3, emr = client("s3", aws_stand_in), client("emr-serverless", aws_stand_in)
    s3.create_bucket(Bucket="cdp-dev-lakehouse")
    application = emr.create_application(name="cdp-dev-spark", releaseLabel="emr-spark-8.0.0", type="spark")
    monkeypatch.setenv("CDP_CRM_CLIENT_SECRET_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    monkeypatch.setenv("CDP_CRM_CLIENT_SECRET", "never-sent")
    settings = Settings.from_env(
        {
            "CDP_HOME": str(tmp_path),
            "CDP_LAUNCHER": "emr_serverless",
            "CDP_EMR_APPLICATION_ID": application["applicationId"],
            "CDP_EMR_EXECUTION_ROLE_ARN": ROLE,
            "CDP_EMR_LOG_GROUP": "/aws/emr-serverless/cdp-dev",
            "CDP_PIPES_BUCKET": "cdp-dev-lakehouse",
            "CDP_LAKEHOUSE_URL": "s3a://cdp-dev-lakehouse/warehouse",
            "CDP_LANDING_URL": "s3a://cdp-dev-landing/landing",
            "CDP_CATALOG": "glue",
            "CDP_S3_ENDPOINT_URL": "",
        }
    )
    yield settings, s3, emr
    emr.stop_application(applicationId=application["applicationId"])


def test_the_code_bundle_is_uploaded_once_per_content_with_its_entry_point(deployment):
    settings, s3, _ = deployment
    code = upload_code(settings, s3)
    assert code.zip_uri.startswith("s3://cdp-dev-lakehouse/dagster-pipes/code/spark_jobs-")
    assert code.entry_point_uri == "s3://cdp-dev-lakehouse/dagster-pipes/code/run_module.py"
    key = code.zip_uri.removeprefix("s3://cdp-dev-lakehouse/")
    bundle = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket="cdp-dev-lakehouse", Key=key)["Body"].read()))
    assert {"spark_jobs/identity/resolve.py", "spark_jobs/ingest/bronze.py"} <= set(bundle.namelist())
    entry = s3.get_object(Bucket="cdp-dev-lakehouse", Key="dagster-pipes/code/run_module.py")["Body"].read()
    assert entry.decode() == ENTRY_POINT
    uploaded = s3.head_object(Bucket="cdp-dev-lakehouse", Key=key)["LastModified"]

    assert upload_code(settings, s3) == code  # the same content: the same key, not uploaded again
    assert s3.head_object(Bucket="cdp-dev-lakehouse", Key=key)["LastModified"] == uploaded


def test_the_job_run_request_runs_the_module_with_the_platforms_spark_configuration(deployment):
    settings, s3, emr = deployment
    code = upload_code(settings, s3)
    params = start_job_run_params(settings, "spark_jobs.identity.resolve", ["--full"], code)

    assert (params["applicationId"], params["executionRoleArn"]) == (settings.emr_application_id, ROLE)
    driver = params["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == code.entry_point_uri
    assert driver["entryPointArguments"] == ["spark_jobs.identity.resolve", "--full"]
    submit = shlex.split(driver["sparkSubmitParameters"])
    assert submit[:2] == ["--py-files", code.zip_uri]
    conf = dict(submit[i + 1].split("=", 1) for i, a in enumerate(submit) if a == "--conf")
    assert conf["spark.sql.warehouse.dir"] == "s3a://cdp-dev-lakehouse/warehouse"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert "io.delta:delta-spark" in conf["spark.jars.packages"] and "hadoop-aws" in conf["spark.jars.packages"]
    assert conf["spark.hadoop.hive.metastore.client.factory.class"].endswith("AWSGlueDataCatalogHiveClientFactory")
    assert not {"spark.master", "spark.driver.host", "spark.pyspark.python", "spark.jars"} & set(conf)
    assert not [k for k in conf if "jdo.option" in k], "no Derby metastore on EMR"
    environment = {k.removeprefix("spark.emr-serverless.driverEnv."): v for k, v in conf.items() if "driverEnv" in k}
    assert environment["CDP_LAKEHOUSE_URL"] == "s3a://cdp-dev-lakehouse/warehouse"
    assert environment["CDP_CATALOG"] == "glue"
    assert environment["CDP_CRM_CLIENT_SECRET_SECRET_ID"].startswith("arn:aws:secretsmanager:")
    assert "CDP_CRM_CLIENT_SECRET" not in environment, "a secret's value in the request"
    assert not {"CDP_HOME", "CDP_SPARK_REMOTE", "CDP_SPARK_MASTER"} & set(environment)
    logging = params["configurationOverrides"]["monitoringConfiguration"]["cloudWatchLoggingConfiguration"]
    assert logging == {"enabled": True, "logGroupName": "/aws/emr-serverless/cdp-dev"}

    # The EMR Serverless API takes the request as it is.
    started = emr.start_job_run(**params, clientToken="test-run-1")
    run = emr.get_job_run(applicationId=settings.emr_application_id, jobRunId=started["jobRunId"])["jobRun"]
    assert run["jobDriver"] == params["jobDriver"]
    assert run["executionRole"] == ROLE


def test_a_launch_without_the_deployments_settings_says_which_are_missing(tmp_path):
    settings = Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LAUNCHER": "emr_serverless"})
    with pytest.raises(LauncherSettingsError, match="CDP_EMR_APPLICATION_ID, CDP_EMR_EXECUTION_ROLE_ARN"):
        start_job_run_params(settings, "spark_jobs.identity.resolve", [], None)
    with pytest.raises(ValueError, match="CDP_LAUNCHER must be one of subprocess, emr_serverless"):
        Settings.from_env({"CDP_HOME": str(tmp_path), "CDP_LAUNCHER": "yarn"})


def test_the_reporter_writes_its_messages_to_s3_when_the_launcher_reads_them_there():
    from dagster_pipes import PipesS3MessageWriter

    from spark_jobs.reporting import message_writer

    assert isinstance(
        message_writer({"bucket": "cdp-dev-lakehouse", "key_prefix": "dagster-pipes/messages/x"}), PipesS3MessageWriter
    )
    assert message_writer({"path": "/tmp/messages"}) is None  # a local process: Pipes' default writer


def test_a_step_with_the_emr_serverless_launcher_becomes_a_job_run_through_dagster_pipes(
    deployment, aws_stand_in, monkeypatch
):
    """The Pipes client of dagster-aws on the stand-in's EMR Serverless API: the run is started
    with the request above plus the Pipes context and message settings in the driver's environment
    (the stand-in's job runs succeed at once and run nothing, so no message comes back)."""
    settings, _, emr = deployment
    aws = {"AWS_ENDPOINT_URL": aws_stand_in, "AWS_DEFAULT_REGION": "us-east-1"}
    aws |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    for key, value in {**settings.to_env(), **aws}.items():
        monkeypatch.setenv(key, value)

    @dg.asset
    def resolved(context, cdp_settings: CdpSettingsResource) -> dg.MaterializeResult:
        invocation = run_spark_job(context, None, cdp_settings, "spark_jobs.identity.resolve", ["--full"])
        return dg.MaterializeResult(metadata={"reported": len(invocation.get_results())})

    assert dg.materialize([resolved], resources={"cdp_settings": CdpSettingsResource()}).success
    (summary,) = emr.list_job_runs(applicationId=settings.emr_application_id)["jobRuns"]
    run = emr.get_job_run(applicationId=settings.emr_application_id, jobRunId=summary["id"])["jobRun"]
    driver = run["jobDriver"]["sparkSubmit"]
    assert driver["entryPointArguments"] == ["spark_jobs.identity.resolve", "--full"]
    assert "spark.emr-serverless.driverEnv.DAGSTER_PIPES_CONTEXT=" in driver["sparkSubmitParameters"]
    submit = shlex.split(driver["sparkSubmitParameters"])
    conf = dict(submit[i + 1].split("=", 1) for i, a in enumerate(submit) if a == "--conf")
    messages = decode_env_var(conf["spark.emr-serverless.driverEnv.DAGSTER_PIPES_MESSAGES"])
    assert messages["bucket"] == "cdp-dev-lakehouse"
    assert messages["key_prefix"].startswith("dagster-pipes/messages/"), "outside what the IAM policy opens"
