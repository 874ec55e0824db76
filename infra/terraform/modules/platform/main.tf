# The whole platform: storage, catalog, secrets, the Spark runtime and Dagster, wired together.
# envs/dev and envs/prod call it with their own sizes, and map its settings output to the
# platform's environment variables.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  warehouse_prefix = "warehouse"
  pipes_prefix     = "dagster-pipes"
}

module "storage" {
  source = "../lakehouse_storage"

  name_prefix                        = var.name_prefix
  force_destroy                      = var.force_destroy_buckets
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  tags                               = var.tags
}

module "catalog" {
  source = "../catalog"

  lakehouse_bucket = module.storage.bucket_names["lakehouse"]
  warehouse_prefix = local.warehouse_prefix
  tags             = var.tags
}

module "secrets" {
  source = "../secrets"

  name_prefix             = var.name_prefix
  kms_key_arn             = module.storage.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = var.tags
}

module "spark_runtime" {
  source = "../spark_runtime"

  name_prefix          = var.name_prefix
  release_label        = var.emr_release_label
  image_uri            = var.emr_image_uri
  maximum_cpu          = var.emr_maximum_cpu
  maximum_memory       = var.emr_maximum_memory
  subnet_ids           = local.private_subnet_ids
  security_group_ids   = [aws_security_group.jobs.id]
  landing_bucket_arn   = module.storage.bucket_arns["landing"]
  lakehouse_bucket_arn = module.storage.bucket_arns["lakehouse"]
  exports_bucket_arn   = module.storage.bucket_arns["exports"]
  kms_key_arn          = module.storage.kms_key_arn
  glue_database_names  = module.catalog.database_names
  secret_arns          = values(module.secrets.secret_arns)
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

# What Dagster may do to launch a run's steps on EMR Serverless through Pipes: start and
# watch job runs of this one application, hand them their role, exchange the Pipes messages
# and the code bundle in the lakehouse bucket, and read the runs' logs.
data "aws_iam_policy_document" "launcher" {
  statement {
    sid       = "RunJobsOnTheApplication"
    actions   = ["emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:CancelJobRun", "emr-serverless:GetDashboardForJobRun", "emr-serverless:GetApplication"]
    resources = [module.spark_runtime.application_arn, "${module.spark_runtime.application_arn}/jobruns/*"]
  }

  statement {
    sid       = "HandTheJobsTheirRole"
    actions   = ["iam:PassRole"]
    resources = [module.spark_runtime.execution_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }

  statement {
    sid       = "ListThePipesPrefix"
    actions   = ["s3:ListBucket"]
    resources = [module.storage.bucket_arns["lakehouse"]]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.pipes_prefix}/*"]
    }
  }

  statement {
    sid       = "ExchangePipesMessagesAndTheCodeBundle"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.storage.bucket_arns["lakehouse"]}/${local.pipes_prefix}/*"]
  }

  statement {
    sid       = "UseTheDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.storage.kms_key_arn]
  }

  statement {
    sid       = "ReadTheJobLogs"
    actions   = ["logs:GetLogEvents", "logs:DescribeLogStreams", "logs:FilterLogEvents"]
    resources = ["${module.spark_runtime.log_group_arn}:*"]
  }
}

locals {
  # The platform's settings (see .env.example): what the jobs and Dagster read.
  settings = merge(
    {
      CDP_LAKEHOUSE_URL          = module.catalog.warehouse_url
      CDP_LANDING_URL            = "s3a://${module.storage.bucket_names["landing"]}/landing"
      CDP_EXPORT_BUCKET          = module.storage.bucket_names["exports"]
      CDP_S3_ENDPOINT_URL        = ""
      CDP_LOCAL_APIS             = "false"
      CDP_CATALOG                = "glue"
      CDP_LAUNCHER               = "emr_serverless"
      CDP_EMR_APPLICATION_ID     = module.spark_runtime.application_id
      CDP_EMR_EXECUTION_ROLE_ARN = module.spark_runtime.execution_role_arn
      CDP_EMR_LOG_GROUP          = module.spark_runtime.log_group_name
      CDP_PIPES_BUCKET           = module.storage.bucket_names["lakehouse"]
      CDP_PIPES_PREFIX           = local.pipes_prefix
    },
    module.secrets.secret_id_settings,
  )
}

module "orchestration" {
  source = "../orchestration"

  name_prefix            = var.name_prefix
  code_location_image    = var.code_location_image
  image_repository_arns  = ["arn:${data.aws_partition.current.partition}:ecr:*:${data.aws_caller_identity.current.account_id}:repository/${var.image_repository}"]
  vpc_id                 = local.vpc_id
  subnet_ids             = local.private_subnet_ids
  environment            = local.settings
  kms_key_arn            = module.storage.kms_key_arn
  launcher_policy_json   = data.aws_iam_policy_document.launcher.json
  create_database        = var.create_database
  db_instance_class      = var.db_instance_class
  db_multi_az            = var.db_multi_az
  db_deletion_protection = var.db_deletion_protection
  log_retention_days     = var.log_retention_days
  tags                   = var.tags
}
