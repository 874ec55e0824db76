data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  glue_arn   = "arn:${local.partition}:glue:${local.region}:${local.account_id}"
}

resource "aws_emrserverless_application" "this" {
  name          = "${var.name_prefix}-spark"
  release_label = var.release_label
  type          = "spark"
  architecture  = var.architecture

  maximum_capacity {
    cpu    = var.maximum_cpu
    memory = var.maximum_memory
  }

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  dynamic "image_configuration" {
    for_each = var.image_uri == null ? [] : [var.image_uri]

    content {
      image_uri = image_configuration.value
    }
  }

  dynamic "network_configuration" {
    for_each = length(var.subnet_ids) == 0 ? [] : [1]

    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "jobs" {
  name              = "/aws/emr-serverless/${var.name_prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name                 = "${var.name_prefix}-spark-jobs"
  description          = "Runs the platform's Spark jobs on EMR Serverless"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 43200
  tags                 = var.tags
}

# What the jobs do, and nothing more: read deliveries, read and write the lakehouse and its
# catalog, write audience files, read their credentials, write their logs.
data "aws_iam_policy_document" "jobs" {
  statement {
    sid       = "ListTheBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.landing_bucket_arn, var.lakehouse_bucket_arn, var.exports_bucket_arn]
  }

  statement {
    sid       = "ReadDeliveries"
    actions   = ["s3:GetObject"]
    resources = ["${var.landing_bucket_arn}/*"]
  }

  statement {
    sid       = "ReadAndWriteTheLakehouseAndExports"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.lakehouse_bucket_arn}/*", "${var.exports_bucket_arn}/*"]
  }

  statement {
    sid       = "UseTheDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid = "ReadAndWriteTheCatalog"
    actions = [
      "glue:GetDatabase", "glue:GetDatabases",
      "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable",
      "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition",
      "glue:CreatePartition", "glue:BatchCreatePartition", "glue:UpdatePartition",
      "glue:DeletePartition", "glue:BatchDeletePartition",
      "glue:GetUserDefinedFunctions",
    ]
    resources = concat(
      ["${local.glue_arn}:catalog"],
      [for name in var.glue_database_names : "${local.glue_arn}:database/${name}"],
      [for name in var.glue_database_names : "${local.glue_arn}:table/${name}/*"],
      [for name in var.glue_database_names : "${local.glue_arn}:userDefinedFunction/${name}/*"],
    )
  }

  statement {
    sid       = "WriteTheJobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.jobs.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadTheCredentials"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }
}

resource "aws_iam_role_policy" "jobs" {
  name   = "spark-jobs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.jobs.json
}
