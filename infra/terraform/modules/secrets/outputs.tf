output "secret_arns" {
  description = "Secret ARNs by the variable they hold."
  value       = { for variable, secret in aws_secretsmanager_secret.this : variable => secret.arn }
}

output "secret_id_settings" {
  description = "The settings that point the jobs at the secrets: <VARIABLE>_SECRET_ID = ARN."
  value       = { for variable, secret in aws_secretsmanager_secret.this : "${variable}_SECRET_ID" => secret.arn }
}
