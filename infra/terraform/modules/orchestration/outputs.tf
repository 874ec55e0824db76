output "cluster_name" {
  description = "ECS cluster of the Dagster webserver and daemon."
  value       = aws_ecs_cluster.this.name
}

output "task_role_arn" {
  description = "Role of the Dagster tasks (what the runs' launchers may do)."
  value       = aws_iam_role.task.arn
}

output "tasks_security_group_id" {
  description = "Security group of the Dagster tasks (allow it on a load balancer in front of the webserver's port 3000)."
  value       = aws_security_group.tasks.id
}

output "database_address" {
  description = "Host of Dagster's Postgres storage (null when create_database is false)."
  value       = var.create_database ? aws_db_instance.dagster[0].address : null
}

output "database_secret_arn" {
  description = "Secrets Manager secret RDS keeps the database's master credentials in (null when create_database is false)."
  value       = var.create_database ? aws_db_instance.dagster[0].master_user_secret[0].secret_arn : null
}

output "log_group_name" {
  description = "CloudWatch log group of the webserver and the daemon."
  value       = aws_cloudwatch_log_group.dagster.name
}
