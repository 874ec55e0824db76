variable "name_prefix" {
  description = "Prefix of the secrets' names: <name_prefix>/<variable in lower case with hyphens>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "credential_variables" {
  description = "The platform's secret settings. For each, a secret is created and <VARIABLE>_SECRET_ID names it, which the jobs read instead of the variable."
  type        = list(string)
  default = [
    "CDP_CRM_CLIENT_ID",
    "CDP_CRM_CLIENT_SECRET",
    "CDP_ESP_API_KEY",
    "CDP_WEBHOOK_SECRET",
    "CDP_ERASURE_SALT",
  ]

  validation {
    condition     = alltrue([for name in var.credential_variables : can(regex("^[A-Z][A-Z0-9_]*$", name))])
    error_message = "credential_variables must be environment variable names (upper case, digits, underscores)."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}

variable "recovery_window_in_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_in_days == 0 || (var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30)
    error_message = "recovery_window_in_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every secret."
  type        = map(string)
  default     = {}
}
