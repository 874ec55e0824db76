variable "name_prefix" {
  description = "Prefix of every name, e.g. \"cdp-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "code_location_image" {
  description = "Container image with the project installed; the Dagster webserver and daemon run from it."
  type        = string
}

variable "image_repository" {
  description = "Name of the account's ECR repository holding code_location_image."
  type        = string
  default     = "lakehouse-cdp"
}

variable "create_network" {
  description = "Create a small VPC (two private subnets behind one NAT gateway). False: pass vpc_id and private_subnet_ids."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR of the VPC when create_network is true."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a CIDR block, e.g. 10.40.0.0/16."
  }
}

variable "vpc_id" {
  description = "Existing VPC when create_network is false."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Existing private subnets (two zones, with a route to a NAT) when create_network is false."
  type        = list(string)
  default     = []
}

variable "force_destroy_buckets" {
  description = "Let a destroy delete buckets that still hold data (throw-away environments only)."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days old object versions (which still hold erased personal data) are kept."
  type        = number
  default     = 30
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0: at once)."
  type        = number
  default     = 30
}

variable "emr_release_label" {
  description = "EMR Serverless release of the Spark application."
  type        = string
  default     = "emr-spark-8.0.0"
}

variable "emr_image_uri" {
  description = "Custom EMR Serverless image with the project's dependencies (null: the release's image)."
  type        = string
  default     = null
}

variable "emr_maximum_cpu" {
  description = "Most vCPUs the Spark application may hold at once, e.g. \"16 vCPU\"."
  type        = string
  default     = "16 vCPU"
}

variable "emr_maximum_memory" {
  description = "Most memory the Spark application may hold at once, e.g. \"64 GB\"."
  type        = string
  default     = "64 GB"
}

variable "create_database" {
  description = "Create the RDS Postgres for Dagster's storage."
  type        = bool
  default     = true
}

variable "db_instance_class" {
  description = "RDS instance class of Dagster's storage."
  type        = string
  default     = "db.t4g.small"
}

variable "db_multi_az" {
  description = "Dagster's database in two availability zones."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete Dagster's database."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days the Spark jobs' and Dagster's logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource (envs set them as the provider's default_tags instead)."
  type        = map(string)
  default     = {}
}
