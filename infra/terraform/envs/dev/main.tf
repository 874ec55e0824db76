provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { project = "lakehouse-cdp", environment = "dev" })
  }
}

# dev: small and cheap. One-zone database, a small Spark ceiling, buckets a destroy may empty,
# secrets deleted at once.
module "platform" {
  source = "../../modules/platform"

  name_prefix                 = "cdp-dev"
  code_location_image         = var.code_location_image
  force_destroy_buckets       = true
  secret_recovery_window_days = 0
  emr_maximum_cpu             = "8 vCPU"
  emr_maximum_memory          = "32 GB"
  create_database             = var.create_database
  db_instance_class           = "db.t4g.micro"
  db_multi_az                 = false
  db_deletion_protection      = var.db_deletion_protection
  log_retention_days          = 365
}
