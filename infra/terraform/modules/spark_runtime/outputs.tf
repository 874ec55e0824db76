output "application_id" {
  description = "EMR Serverless application id (CDP_EMR_APPLICATION_ID)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "EMR Serverless application ARN."
  value       = aws_emrserverless_application.this.arn
}

output "execution_role_arn" {
  description = "Role the job runs assume (CDP_EMR_EXECUTION_ROLE_ARN); the launcher needs iam:PassRole on it."
  value       = aws_iam_role.execution.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the job runs."
  value       = aws_cloudwatch_log_group.jobs.name
}

output "log_group_arn" {
  description = "ARN of the job runs' log group."
  value       = aws_cloudwatch_log_group.jobs.arn
}
