provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { project = "lakehouse-cdp", environment = "prod" })
  }
}

# prod: the database in two zones and protected, buckets never emptied by a destroy, deleted
# secrets restorable for 30 days, a larger Spark ceiling.
module "platform" {
  source = "../../modules/platform"

  name_prefix                 = "cdp-prod"
  code_location_image         = var.code_location_image
  force_destroy_buckets       = false
  secret_recovery_window_days = 30
  emr_maximum_cpu             = "64 vCPU"
  emr_maximum_memory          = "256 GB"
  create_database             = var.create_database
  db_instance_class           = "db.t4g.medium"
  db_multi_az                 = true
  db_deletion_protection      = var.db_deletion_protection
  log_retention_days          = 731
}
