# Only the secrets are created, never their values: a value set here would be stored in the
# Terraform state in plain text. Put each value with
#   aws secretsmanager put-secret-value --secret-id <arn> --secret-string <value>
resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:The values are third-party API credentials; they are rotated at the issuing platform, for which AWS has no rotation function.
  for_each = toset(var.credential_variables)

  name                    = "${var.name_prefix}/${lower(replace(each.value, "_", "-"))}"
  description             = "Lakehouse CDP: the value of ${each.value}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_in_days
  tags                    = var.tags
}
