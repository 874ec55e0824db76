variable "name_prefix" {
  description = "Prefix of every name this module creates, e.g. \"cdp-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "code_location_image" {
  description = "Container image with the project installed (dagster_project, spark_jobs, dbt/) and dagster-postgres; the webserver and the daemon run from it."
  type        = string

  validation {
    condition     = length(trimspace(var.code_location_image)) > 0
    error_message = "code_location_image must name an image, e.g. <account>.dkr.ecr.<region>.amazonaws.com/lakehouse-cdp:<tag>."
  }
}

variable "image_repository_arns" {
  description = "ECR repositories the tasks may pull code_location_image from."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the tasks and the database."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two, in different zones) for the tasks and the database."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two subnets in different availability zones (RDS requires it)."
  }
}

variable "environment" {
  description = "The platform's settings for the webserver and the daemon (CDP_LAKEHOUSE_URL, CDP_EMR_APPLICATION_ID, ...). No secrets: they go in secret_environment."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Settings read from Secrets Manager at task start: variable name -> secret ARN (or ARN:json-key::)."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "KMS key for the log group, the database storage and its master password."
  type        = string
}

variable "webserver_cpu" {
  description = "CPU units of the webserver task (1024 = 1 vCPU)."
  type        = number
  default     = 512
}

variable "webserver_memory" {
  description = "Memory (MiB) of the webserver task."
  type        = number
  default     = 1024
}

variable "daemon_cpu" {
  description = "CPU units of the daemon task, which also runs the runs' step processes (the Spark work runs on EMR Serverless)."
  type        = number
  default     = 1024
}

variable "daemon_memory" {
  description = "Memory (MiB) of the daemon task."
  type        = number
  default     = 4096
}

variable "launcher_policy_json" {
  description = "IAM policy (JSON) of what the runs launch: EMR Serverless job runs, PassRole on their execution role, the Pipes bucket. Attached to the tasks' role."
  type        = string
}

variable "create_database" {
  description = "Create the RDS Postgres instance for Dagster's run, event and schedule storage. False: bring your own and pass DAGSTER_PG_* in environment / secret_environment."
  type        = bool
  default     = true
}

variable "db_instance_class" {
  description = "RDS instance class of Dagster's storage."
  type        = string
  default     = "db.t4g.small"
}

variable "db_allocated_storage" {
  description = "Storage (GiB) of Dagster's database."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20
    error_message = "db_allocated_storage must be at least 20 GiB."
  }
}

variable "db_engine_version" {
  description = "Postgres version of Dagster's database."
  type        = string
  default     = "16.3"
}

variable "db_multi_az" {
  description = "Run the database in two availability zones (prod: true)."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off before a destroy)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "log_retention_days" {
  description = "Days the webserver and daemon logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
