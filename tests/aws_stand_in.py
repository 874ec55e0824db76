"""The local AWS stand-in for the Terraform tests: moto's server, adapted where it diverges
from AWS in ways that would make a correct module fail or never settle (so the modules stay
written for AWS, and ``plan`` after ``apply`` shows no changes, as on AWS).

    python tests/aws_stand_in.py -H 127.0.0.1 -p PORT

Where moto 5.2.5 differs from AWS, and what is adapted here:
- EMR Serverless accepts only the application types ``SPARK``/``HIVE`` (AWS and the provider
  use ``spark``), knows only ``emr-N.N.0`` release labels (not the Spark 4 runtime's
  ``emr-spark-8.0.0``), creates applications ``STARTED`` (AWS: ``CREATED``, which the provider
  waits for), and leaves ``architecture`` out of GetApplication.
- RDS forgets ``EnablePerformanceInsights`` and its key, and returns a parameter group's
  parameters without ``Source: user``, by which the provider tells the ones it set.
- EC2 drops the description of a security-group rule that references another group.
- ECS leaves ``availabilityZoneRebalancing`` out of DescribeServices (AWS: ``DISABLED`` by default).
"""

from __future__ import annotations

import re
import sys

import moto.ec2.models.security_groups as ec2_security_groups
import moto.ecs.models as ecs
import moto.emrserverless.models as emr_serverless
import moto.rds.models as rds

# --- EMR Serverless --------------------------------------------------------------------------
emr_serverless.APPLICATION_STATUS = "CREATED"
emr_serverless.Application.architecture = "X86_64"
_create_application = emr_serverless.EMRServerlessBackend.create_application


def _create_application_as_aws_does(self, **kwargs):
    kwargs["application_type"] = kwargs["application_type"].upper()
    release_label = kwargs["release_label"]
    if re.fullmatch(r"emr-spark-\d+\.\d+\.\d+", release_label):
        kwargs["release_label"] = "emr-7.0.0"  # passes moto's check; the real label is put back below
    application = _create_application(self, **kwargs)
    application.release_label = release_label
    return application


emr_serverless.EMRServerlessBackend.create_application = _create_application_as_aws_does

# --- RDS -------------------------------------------------------------------------------------
_db_instance_init = rds.DBInstance.__init__


def _db_instance_init_keeping_performance_insights(self, *args, **kwargs):
    _db_instance_init(self, *args, **kwargs)
    self.performance_insights_enabled = bool(kwargs.get("enable_performance_insights", False))
    self.performance_insights_kms_key_id = kwargs.get("performance_insights_kms_key_id")


rds.DBInstance.__init__ = _db_instance_init_keeping_performance_insights
_update_parameters = rds.DBParameterGroup.update_parameters


def _update_parameters_as_user(self, new_parameters):
    _update_parameters(self, [{**parameter, "Source": "user"} for parameter in new_parameters])


rds.DBParameterGroup.update_parameters = _update_parameters_as_user

# --- EC2 -------------------------------------------------------------------------------------
ec2_security_groups.SecurityGroupRule.description = property(
    lambda rule: rule.ip_range.get("Description") or rule.source_group.get("Description")
)

# --- ECS -------------------------------------------------------------------------------------
ecs.Service.availability_zone_rebalancing = "DISABLED"

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
