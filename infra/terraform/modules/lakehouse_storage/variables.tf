variable "name_prefix" {
  description = "Prefix of every name this module creates, e.g. \"cdp-dev\". Bucket names also get the account id, so they are unique."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 characters: lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "landing_expiration_days" {
  description = "Days after which a delivery in the landing bucket expires. Ingestion keeps what it accepted in bronze; keep this longer than the longest re-delivery window."
  type        = number
  default     = 90

  validation {
    condition     = var.landing_expiration_days >= 7
    error_message = "landing_expiration_days must be at least 7."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days an overwritten or deleted object version is kept. An erasure deletes personal data from the current versions; the old versions hold it until they expire, so keep this inside the erasure deadline (30 days under GDPR)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && var.noncurrent_version_expiration_days <= 30
    error_message = "noncurrent_version_expiration_days must be between 1 and 30 (old versions keep erased personal data until they expire)."
  }
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the buckets' KMS key is deleted after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "kms_deletion_window_days must be between 7 and 30."
  }
}

variable "force_destroy" {
  description = "Let terraform destroy delete buckets that still hold objects. Keep false outside throw-away environments."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
