data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # landing: deliveries as they arrive; lakehouse: the Delta tables of every layer;
  # exports: audience files for ad platforms (written by the activation job).
  buckets = {
    landing   = "${var.name_prefix}-landing-${local.account_id}"
    lakehouse = "${var.name_prefix}-lakehouse-${local.account_id}"
    exports   = "${var.name_prefix}-exports-${local.account_id}"
  }
}

# One key for the platform's data at rest: the buckets, the log groups and the secrets.
data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy's resource "*" is the key itself; the account keeps administering it through IAM, as in AWS's default key policy.
  #checkov:skip=CKV_AWS_356:A key policy's resource "*" is the key itself, not every resource.
  #checkov:skip=CKV_AWS_109:The account root keeps managing the key (AWS's default key policy); without it the key could become unmanageable.
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsThePlatformsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix}: the lakehouse, landing and export buckets, logs and secrets"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-lakehouse"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logs need a log bucket per account; the account's CloudTrail data events are the audit trail here.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; the landing zone can be re-delivered and the lakehouse rebuilt from it.
  #checkov:skip=CKV2_AWS_62:Ingestion is driven by Dagster's schedule and landing sensor, not by S3 event notifications.
  #checkov:skip=CKV2_AWS_6:Every bucket has its public access block (aws_s3_bucket_public_access_block.this, same for_each); checkov's graph links it to one instance only. The apply test asserts it on all three.
  #checkov:skip=CKV2_AWS_61:Every bucket has its lifecycle configuration (same for_each); checkov's graph links it to one instance only. The apply test asserts it on all three.
  #checkov:skip=CKV_AWS_145:Every bucket is encrypted with the module's KMS key (same for_each); checkov's graph links it to one instance only. The apply test asserts it on all three.
  #checkov:skip=CKV_AWS_21:Every bucket is versioned (same for_each); checkov's graph links it to one instance only. The apply test asserts it on all three.
  for_each = local.buckets

  bucket        = each.value
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { "cdp:bucket" = each.key })
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  policy = data.aws_iam_policy_document.tls_only[each.key].json

  # S3 refuses a bucket policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = each.key == "landing" ? [1] : []

    content {
      id     = "expire-deliveries"
      status = "Enabled"

      filter {}

      expiration {
        days = var.landing_expiration_days
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
