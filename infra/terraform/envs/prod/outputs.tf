output "settings" {
  description = "The platform's settings for this environment: put them in the environment of whatever runs the jobs (the Dagster tasks already have them)."
  value       = module.platform.settings
}

output "secret_arns" {
  description = "Secrets to fill with aws secretsmanager put-secret-value, by the variable they hold."
  value       = module.platform.secret_arns
}

output "emr_application_id" {
  description = "EMR Serverless application the steps run on."
  value       = module.platform.emr_application_id
}

output "dagster_cluster_name" {
  description = "ECS cluster of the Dagster webserver and daemon."
  value       = module.platform.dagster_cluster_name
}
