output "database_names" {
  description = "The Glue databases created."
  value       = [for database in aws_glue_catalog_database.this : database.name]
}

output "database_arns" {
  description = "ARNs of the Glue databases."
  value       = [for database in aws_glue_catalog_database.this : database.arn]
}

output "warehouse_url" {
  description = "The warehouse root as Spark's s3a:// URL (CDP_LAKEHOUSE_URL)."
  value       = "s3a://${var.lakehouse_bucket}/${var.warehouse_prefix}"
}
