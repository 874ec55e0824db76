variable "name_prefix" {
  description = "Prefix of every name this module creates, e.g. \"cdp-dev\"."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "release_label" {
  description = "EMR Serverless release. The jobs are written for Spark 4 (emr-spark-8.0.0 ships Spark 4.0 and Delta 4.0)."
  type        = string
  default     = "emr-spark-8.0.0"

  validation {
    condition     = can(regex("^emr-", var.release_label))
    error_message = "release_label must be an EMR release label, e.g. emr-spark-8.0.0."
  }
}

variable "image_uri" {
  description = "Custom image (ECR) with the project's Python dependencies installed, built FROM the release's base image. Null runs on the release's own image, where the job bundle must bring its dependencies."
  type        = string
  default     = null
}

variable "architecture" {
  description = "CPU architecture of the workers: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.architecture)
    error_message = "architecture must be X86_64 or ARM64."
  }
}

variable "maximum_cpu" {
  description = "Most vCPUs the application may hold at once across its jobs (the cost ceiling), e.g. \"16 vCPU\"."
  type        = string
  default     = "16 vCPU"

  validation {
    condition     = can(regex("^[0-9]+ vCPU$", var.maximum_cpu))
    error_message = "maximum_cpu must look like \"16 vCPU\"."
  }
}

variable "maximum_memory" {
  description = "Most memory the application may hold at once, e.g. \"64 GB\"."
  type        = string
  default     = "64 GB"

  validation {
    condition     = can(regex("^[0-9]+ GB$", var.maximum_memory))
    error_message = "maximum_memory must look like \"64 GB\"."
  }
}

variable "idle_timeout_minutes" {
  description = "Minutes without a job after which the application stops (and stops costing)."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_timeout_minutes >= 1 && var.idle_timeout_minutes <= 10080
    error_message = "idle_timeout_minutes must be between 1 and 10080."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the jobs, so they reach the destinations' APIs through the VPC's NAT. Empty: no VPC configuration."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups of the jobs when subnet_ids is set."
  type        = list(string)
  default     = []
}

variable "landing_bucket_arn" {
  description = "ARN of the landing bucket (the jobs read it)."
  type        = string
}

variable "lakehouse_bucket_arn" {
  description = "ARN of the lakehouse bucket (the jobs read and write it; the Pipes messages and the code bundle live there too)."
  type        = string
}

variable "exports_bucket_arn" {
  description = "ARN of the exports bucket (the activation job writes audience files there)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the buckets, the log group and the secrets."
  type        = string
}

variable "glue_database_names" {
  description = "Glue databases the jobs read and write."
  type        = list(string)
}

variable "secret_arns" {
  description = "Secrets Manager secrets the jobs may read (destination credentials, the erasure salt)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the job logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, ...)."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
