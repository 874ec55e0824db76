"""infra/terraform: formatted, valid, clean under checkov, and envs/dev applied for real to the
local AWS stand-in (moto's server, tests/aws_stand_in.py), checked with boto3, re-planned with
no changes and destroyed without leftovers.

The provider comes from a local mirror when one is found (``TF_PLUGIN_DIR``, else the mirror
folder of this project's machines), from the Terraform registry otherwise. The modules carry
no test endpoints: the AWS_ENDPOINT_URL environment variable points the provider and the S3
state backend at the stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from spark_jobs.settings import REPO_ROOT, Settings

TERRAFORM = shutil.which("terraform")
pytestmark = pytest.mark.terraform
needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform is not on PATH: the infra/terraform tests need its CLI"
)

INFRA = REPO_ROOT / "infra" / "terraform"
ROOTS = sorted(str(path.parent.relative_to(INFRA)) for path in INFRA.glob("*/*/versions.tf"))
PROVIDER_MIRRORS = ("/opt/tf-plugins", "/usr/local/share/terraform/plugins", "/usr/share/terraform/plugins")
CHECKOV_VERSION = "3.3.30"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # the stand-in's account
DEV_VARS = [
    "-var",
    "code_location_image=123456789012.dkr.ecr.us-east-1.amazonaws.com/lakehouse-cdp:test",
    "-var",
    f"region={REGION}",
    "-var",
    "db_deletion_protection=false",
]
DATABASES = {"bronze", "silver", "staging", "intermediate", "gold", "snapshots", "activation", "privacy"}
SECRETS = {"cdp-crm-client-id", "cdp-crm-client-secret", "cdp-esp-api-key", "cdp-webhook-secret", "cdp-erasure-salt"}


def provider_mirror() -> str | None:
    configured = os.environ.get("TF_PLUGIN_DIR", "").strip()
    if configured:
        return configured
    return next((m for m in PROVIDER_MIRRORS if (Path(m) / "registry.terraform.io/hashicorp/aws").is_dir()), None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A copy of infra/terraform (init writes .terraform/ folders and lock files into a root)
    and a CLI configuration that takes the provider from the mirror."""
    base = tmp_path_factory.mktemp("terraform")
    shutil.copytree(INFRA, base / "terraform", ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    config = base / "terraformrc"
    mirror = provider_mirror()
    hashicorp = '["registry.terraform.io/hashicorp/*"]'
    config.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n    include = {hashicorp}\n  }}\n'
        f"  direct {{\n    exclude = {hashicorp}\n  }}\n}}\n"
        if mirror
        else ""
    )
    return base


def terraform(workspace: Path, root: str, *args: str, env: dict[str, str] | None = None, check: bool = True):
    environment = {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(workspace / "terraformrc"),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
        **(env or {}),
    }
    result = subprocess.run(
        [TERRAFORM, *args, "-no-color"],
        cwd=workspace / "terraform" / root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"terraform {' '.join(args)} in {root} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@needs_terraform
def test_the_terraform_files_are_formatted():
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", "-no-color", str(INFRA)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"run terraform fmt -recursive infra/terraform:\n{result.stdout}{result.stderr}"


def test_every_module_and_env_is_a_documented_root_the_tests_know():
    assert set(ROOTS) == {
        "envs/dev",
        "envs/prod",
        "modules/catalog",
        "modules/lakehouse_storage",
        "modules/orchestration",
        "modules/platform",
        "modules/secrets",
        "modules/spark_runtime",
    }
    for root in ROOTS:
        for name in ("main.tf", "variables.tf", "outputs.tf", "README.md"):
            assert (INFRA / root / name).is_file(), f"{root} has no {name}"
        readme = (INFRA / root / "README.md").read_text(encoding="utf-8")
        declared = re.findall(r'^(?:variable|output) "(\w+)"', terraform_text(INFRA / root), flags=re.MULTILINE)
        undocumented = [name for name in declared if f"`{name}`" not in readme]
        assert not undocumented, f"{root}/README.md does not name {undocumented}"


def terraform_text(root: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(root.glob("*.tf")))


@needs_terraform
@pytest.mark.parametrize("root", ROOTS)
def test_each_module_and_env_initialises_offline_and_validates(workspace, root):
    terraform(workspace, root, "init", "-backend=false")
    result = terraform(workspace, root, "validate", "-json", check=False)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)


def checkov() -> Path:
    """checkov in a virtualenv of its own (it pins an older boto3 than the project's),
    under the state folder, installed once."""
    venv = Settings.from_env().home / "tools" / f"checkov-{CHECKOV_VERSION}"
    executable = venv / "bin" / "checkov"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        # uv, which ./cdp installs beside the project's Python: 5.5 s here where pip took 31.7 s.
        uv = Path(sys.executable).with_name("uv")
        installer = [str(uv), "pip", "install", "--python", str(venv / "bin" / "python")]
        if not uv.exists():
            installer = [str(venv / "bin" / "pip"), "install"]
        install = subprocess.run([*installer, "--quiet", f"checkov=={CHECKOV_VERSION}"], capture_output=True, text=True)
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"could not install checkov {CHECKOV_VERSION}:\n{install.stderr}")
    return executable


@needs_terraform
def test_checkov_fails_no_check_and_every_skip_says_why():
    result = subprocess.run(
        [str(checkov()), "-d", str(INFRA), "--framework", "terraform", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    assert report["check_type"] == "terraform"
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] >= 60, report["summary"]  # it did read the modules
    assert report["results"]["skipped_checks"], "no skip at all: is checkov reading the inline skips?"
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"


# --- envs/dev on the AWS stand-in ---------------------------------------------------------------


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(service: str, endpoint: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


@needs_terraform
def test_dev_applies_to_the_aws_stand_in_then_replans_clean_and_destroys_to_nothing(workspace, aws_stand_in):
    env = aws_environment(aws_stand_in)
    client("s3", aws_stand_in).create_bucket(Bucket="terraform-state")
    backend = ["-backend-config=bucket=terraform-state", f"-backend-config=region={REGION}"]
    terraform(workspace, "envs/dev", "init", *backend, env=env)

    terraform(workspace, "envs/dev", "apply", "-auto-approve", *DEV_VARS, env=env)
    outputs = json.loads(terraform(workspace, "envs/dev", "output", "-json", env=env).stdout)
    assert_storage(aws_stand_in, outputs)
    assert_catalog(aws_stand_in)
    assert_spark_runtime(aws_stand_in, outputs)
    assert_secrets(aws_stand_in, outputs)
    assert_orchestration(aws_stand_in, outputs)
    state = client("s3", aws_stand_in).list_objects_v2(Bucket="terraform-state")["Contents"]
    assert [o["Key"] for o in state] == ["lakehouse-cdp/dev/terraform.tfstate"]

    plan = terraform(workspace, "envs/dev", "plan", "-detailed-exitcode", *DEV_VARS, env=env, check=False)
    assert plan.returncode == 0, f"a plan right after apply wants changes:\n{plan.stdout}\n{plan.stderr}"

    terraform(workspace, "envs/dev", "destroy", "-auto-approve", *DEV_VARS, env=env)
    assert_nothing_left(aws_stand_in)


def assert_storage(endpoint: str, outputs: dict) -> None:
    s3, kms = client("s3", endpoint), client("kms", endpoint)
    key_arn = next(
        kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["Arn"]
        for a in kms.list_aliases()["Aliases"]
        if a["AliasName"] == "alias/cdp-dev-lakehouse"
    )
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"]
    for role in ("landing", "lakehouse", "exports"):
        bucket = f"cdp-dev-{role}-{ACCOUNT}"
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled", bucket
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ), bucket
        (statement,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
        assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
        assert ("expire-deliveries" in rules) == (role == "landing"), bucket
    settings = outputs["settings"]["value"]
    assert settings["CDP_LAKEHOUSE_URL"] == f"s3a://cdp-dev-lakehouse-{ACCOUNT}/warehouse"
    assert settings["CDP_LANDING_URL"] == f"s3a://cdp-dev-landing-{ACCOUNT}/landing"
    assert settings["CDP_EXPORT_BUCKET"] == f"cdp-dev-exports-{ACCOUNT}"


def assert_catalog(endpoint: str) -> None:
    databases = {d["Name"]: d["LocationUri"] for d in client("glue", endpoint).get_databases()["DatabaseList"]}
    assert databases == {name: f"s3://cdp-dev-lakehouse-{ACCOUNT}/warehouse/{name}.db" for name in DATABASES}


def policy_statements(iam, role: str) -> list[dict]:
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    return [
        {**s, "Action": [s["Action"]] if isinstance(s["Action"], str) else s["Action"]} for s in document["Statement"]
    ]


def resources_of(statements: list[dict], action: str) -> set[str]:
    found = set()
    for statement in statements:
        if action in statement["Action"]:
            found |= {statement["Resource"]} if isinstance(statement["Resource"], str) else set(statement["Resource"])
    return found


def assert_spark_runtime(endpoint: str, outputs: dict) -> None:
    application = client("emr-serverless", endpoint).get_application(
        applicationId=outputs["emr_application_id"]["value"]
    )
    application = application["application"]
    assert (application["type"].lower(), application["releaseLabel"], application["state"]) == (
        "spark",
        "emr-spark-8.0.0",
        "CREATED",
    )
    assert application["maximumCapacity"]["cpu"] == "8 vCPU"
    assert application["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}

    iam = client("iam", endpoint)
    jobs = policy_statements(iam, "cdp-dev-spark-jobs")
    every_action = {a for s in jobs for a in s["Action"]}
    assert not any(a == "*" or a.endswith(":*") for a in every_action), every_action
    landing = f"arn:aws:s3:::cdp-dev-landing-{ACCOUNT}/*"
    assert landing in resources_of(jobs, "s3:GetObject")
    assert landing not in resources_of(jobs, "s3:PutObject") | resources_of(jobs, "s3:DeleteObject"), (
        "the jobs may change deliveries"
    )
    assert resources_of(jobs, "s3:PutObject") == {
        f"arn:aws:s3:::cdp-dev-lakehouse-{ACCOUNT}/*",
        f"arn:aws:s3:::cdp-dev-exports-{ACCOUNT}/*",
    }
    glue_resources = resources_of(jobs, "glue:CreateTable")
    assert f"arn:aws:glue:{REGION}:{ACCOUNT}:table/gold/*" in glue_resources
    assert not any(r.endswith(":*") or r == "*" for r in glue_resources), glue_resources
    assert len(resources_of(jobs, "secretsmanager:GetSecretValue")) == len(SECRETS)

    launcher = policy_statements(iam, "cdp-dev-dagster-task")
    (pass_role,) = [s for s in launcher if "iam:PassRole" in s["Action"]]
    assert pass_role["Resource"] == f"arn:aws:iam::{ACCOUNT}:role/cdp-dev-spark-jobs"
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}
    settings = outputs["settings"]["value"]
    assert settings["CDP_EMR_APPLICATION_ID"] == application["applicationId"]
    assert (settings["CDP_LAUNCHER"], settings["CDP_CATALOG"]) == ("emr_serverless", "glue")


def assert_secrets(endpoint: str, outputs: dict) -> None:
    secrets_manager = client("secretsmanager", endpoint)
    secrets = [s for s in secrets_manager.list_secrets()["SecretList"] if s["Name"].startswith("cdp-dev/")]
    assert {s["Name"].removeprefix("cdp-dev/") for s in secrets} == SECRETS
    for secret in secrets:  # the values are put outside Terraform, so no state holds them
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            secrets_manager.get_secret_value(SecretId=secret["ARN"])
    settings = outputs["settings"]["value"]
    by_name = {s["Name"]: s["ARN"] for s in secrets}
    assert settings["CDP_CRM_CLIENT_SECRET_SECRET_ID"] == by_name["cdp-dev/cdp-crm-client-secret"]


def assert_orchestration(endpoint: str, outputs: dict) -> None:
    ecs = client("ecs", endpoint)
    cluster = outputs["dagster_cluster_name"]["value"]
    services = ecs.describe_services(cluster=cluster, services=["webserver", "daemon"])["services"]
    assert {s["serviceName"]: s["launchType"] for s in services} == {"webserver": "FARGATE", "daemon": "FARGATE"}
    definition = ecs.describe_task_definition(taskDefinition="cdp-dev-dagster-daemon")["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    assert environment["CDP_LAKEHOUSE_URL"] == outputs["settings"]["value"]["CDP_LAKEHOUSE_URL"]
    assert {s["name"] for s in container["secrets"]} == {"DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD"}
    assert not any("PASSWORD" in name for name in environment), "a password in the task's plain environment"

    (database,) = client("rds", endpoint).describe_db_instances()["DBInstances"]
    assert database["StorageEncrypted"] and not database["PubliclyAccessible"]
    assert database["Engine"] == "postgres" and database["DBInstanceIdentifier"] == "cdp-dev-dagster"


def assert_nothing_left(endpoint: str) -> None:
    assert [b["Name"] for b in client("s3", endpoint).list_buckets()["Buckets"]] == ["terraform-state"]
    assert client("glue", endpoint).get_databases()["DatabaseList"] == []
    assert client("rds", endpoint).describe_db_instances()["DBInstances"] == []
    assert [s["Name"] for s in client("secretsmanager", endpoint).list_secrets()["SecretList"]] == []
    roles = [r["RoleName"] for r in client("iam", endpoint).list_roles()["Roles"] if r["RoleName"].startswith("cdp-")]
    assert roles == []
    applications = client("emr-serverless", endpoint).list_applications()["applications"]
    assert all(a["state"] == "TERMINATED" for a in applications), applications
    ecs = client("ecs", endpoint)
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
    assert all(c["status"] == "INACTIVE" for c in clusters), (
        clusters
    )  # as on AWS, a deleted cluster stays listed a while


def test_the_deployments_dagster_yaml_is_a_valid_instance_on_postgres_from_the_tasks_environment(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    source = REPO_ROOT / "infra" / "dagster" / "dagster.yaml"
    config, _ = dagster_instance_config(str(source.parent))
    database = config["storage"]["postgres"]["postgres_db"]
    assert {key: value["env"] for key, value in database.items() if key != "params"} == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "db_name": "DAGSTER_PG_DB",
        "username": "DAGSTER_PG_USERNAME",
        "password": "DAGSTER_PG_PASSWORD",
    }
    orchestration = terraform_text(INFRA / "modules" / "orchestration")
    assert all(name in orchestration for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"))
    (tmp_path / "dagster.yaml").write_text(source.read_text().replace("hostname:", "host:"))
    with pytest.raises(Exception, match="host"):  # the schema is checked: a wrong key is refused
        dagster_instance_config(str(tmp_path))
