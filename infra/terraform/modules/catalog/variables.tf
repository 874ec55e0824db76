variable "lakehouse_bucket" {
  description = "Name of the lakehouse bucket that holds the databases' tables."
  type        = string
}

variable "warehouse_prefix" {
  description = "Key prefix of the warehouse inside the lakehouse bucket: each database is <prefix>/<name>.db, where Spark puts it too."
  type        = string
  default     = "warehouse"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9/_-]*[a-z0-9]$", var.warehouse_prefix))
    error_message = "warehouse_prefix must be a key prefix without leading or trailing slashes."
  }
}

variable "databases" {
  description = "The platform's databases: one per layer, as the Spark jobs and dbt name them."
  type        = list(string)
  default     = ["bronze", "silver", "staging", "intermediate", "gold", "snapshots", "activation", "privacy"]

  validation {
    condition     = alltrue([for name in var.databases : can(regex("^[a-z][a-z0-9_]*$", name))])
    error_message = "Database names must be lower-case letters, digits and underscores, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes them."
  type        = map(string)
  default     = {}
}
