output "bucket_names" {
  description = "Bucket names by role: landing, lakehouse, exports."
  value       = { for role, bucket in aws_s3_bucket.this : role => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARNs by role: landing, lakehouse, exports."
  value       = { for role, bucket in aws_s3_bucket.this : role => bucket.arn }
}

output "kms_key_arn" {
  description = "ARN of the key that encrypts the buckets (and that the platform's log groups and secrets use)."
  value       = aws_kms_key.this.arn
}
