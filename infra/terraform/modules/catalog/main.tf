# The shared catalog that replaces the embedded Derby metastore in the cloud: EMR Serverless
# reads it through the Glue Hive client (spark.hadoop.hive.metastore.client.factory.class).
# The names are the platform's own (bronze, silver, ...), so use one AWS account per environment.
resource "aws_glue_catalog_database" "this" {
  for_each = toset(var.databases)

  name         = each.value
  description  = "Lakehouse CDP: the ${each.value} layer"
  location_uri = "s3://${var.lakehouse_bucket}/${var.warehouse_prefix}/${each.value}.db"
  tags         = var.tags
}
