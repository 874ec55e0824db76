# A small VPC for the Dagster tasks, their database and the Spark jobs: two private subnets
# behind one NAT gateway (the jobs call the destinations' APIs; the tasks pull their image).
# Pass vpc_id and private_subnet_ids instead to use a network of your own.

data "aws_region" "current" {}

# Two named zones, so the network does not move when AWS adds a zone to the region.
data "aws_availability_zones" "pinned" {
  state = "available"

  filter {
    name   = "zone-name"
    values = ["${data.aws_region.current.name}a", "${data.aws_region.current.name}b"]
  }
}

locals {
  zones = data.aws_availability_zones.pinned.names
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:VPC flow logs are an account-wide choice (often to a central log archive), not this platform's.
  count = var.create_network ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name_prefix }
}

# Nothing may use the default security group.
resource "aws_default_security_group" "this" {
  count = var.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${var.name_prefix}-default-unused" }
}

resource "aws_subnet" "private" {
  count = var.create_network ? 2 : 0

  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  tags              = { Name = "${var.name_prefix}-private-${local.zones[count.index]}" }
}

resource "aws_subnet" "public" {
  count = var.create_network ? 1 : 0

  vpc_id            = aws_vpc.this[0].id
  availability_zone = local.zones[0]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, 8)
  tags              = { Name = "${var.name_prefix}-public-${local.zones[0]}" }
}

resource "aws_internet_gateway" "this" {
  count = var.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = var.name_prefix }
}

resource "aws_eip" "nat" {
  count = var.create_network ? 1 : 0

  domain = "vpc"
  tags   = { Name = "${var.name_prefix}-nat" }
}

resource "aws_nat_gateway" "this" {
  count = var.create_network ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id
  tags          = { Name = var.name_prefix }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  count = var.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${var.name_prefix}-public" }
}

resource "aws_route" "public_internet" {
  count = var.create_network ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = var.create_network ? 1 : 0

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table" "private" {
  count = var.create_network ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${var.name_prefix}-private" }
}

resource "aws_route" "private_nat" {
  count = var.create_network ? 1 : 0

  route_table_id         = aws_route_table.private[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  count = var.create_network ? 2 : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

resource "aws_security_group" "jobs" {
  #checkov:skip=CKV2_AWS_5:Attached to the EMR Serverless application's network configuration (modules/spark_runtime), which checkov does not follow.
  name        = "${var.name_prefix}-spark-jobs"
  description = "EMR Serverless jobs: outbound HTTPS only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "jobs_https" {
  security_group_id = aws_security_group.jobs.id
  description       = "AWS APIs and the destinations' APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

locals {
  vpc_id             = var.create_network ? aws_vpc.this[0].id : var.vpc_id
  private_subnet_ids = var.create_network ? aws_subnet.private[*].id : var.private_subnet_ids
}
