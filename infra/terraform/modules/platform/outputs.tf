output "settings" {
  description = "The platform's settings for this deployment (environment variable -> value); the Dagster tasks get them already."
  value       = local.settings
}

output "bucket_names" {
  description = "Bucket names by role: landing, lakehouse, exports."
  value       = module.storage.bucket_names
}

output "kms_key_arn" {
  description = "The platform's data key."
  value       = module.storage.kms_key_arn
}

output "glue_databases" {
  description = "Glue databases of the lakehouse's layers."
  value       = module.catalog.database_names
}

output "emr_application_id" {
  description = "EMR Serverless application the steps run on."
  value       = module.spark_runtime.application_id
}

output "emr_execution_role_arn" {
  description = "Role of the EMR Serverless job runs."
  value       = module.spark_runtime.execution_role_arn
}

output "secret_arns" {
  description = "Secrets to fill with aws secretsmanager put-secret-value, by the variable they hold."
  value       = module.secrets.secret_arns
}

output "dagster_cluster_name" {
  description = "ECS cluster of the Dagster webserver and daemon."
  value       = module.orchestration.cluster_name
}

output "dagster_database_address" {
  description = "Host of Dagster's Postgres storage."
  value       = module.orchestration.database_address
}

output "vpc_id" {
  description = "VPC of the deployment."
  value       = local.vpc_id
}
