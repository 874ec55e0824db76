variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "eu-west-1"
}

variable "code_location_image" {
  description = "Container image with the project installed (built from the repository), for the Dagster webserver and daemon."
  type        = string
}

variable "create_database" {
  description = "Create the RDS Postgres for Dagster's storage."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete Dagster's database (set false before destroying the environment)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on every resource, besides project and environment."
  type        = map(string)
  default     = {}
}
