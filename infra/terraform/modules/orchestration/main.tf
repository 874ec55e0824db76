data "aws_region" "current" {}

locals {
  dagster_home = "/opt/dagster/dagster_home"
  database     = "dagster"

  # Dagster's dagster.yaml (see the README) reads its storage from these.
  database_environment = var.create_database ? {
    DAGSTER_PG_HOST = aws_db_instance.dagster[0].address
    DAGSTER_PG_PORT = tostring(aws_db_instance.dagster[0].port)
    DAGSTER_PG_DB   = local.database
  } : {}
  database_secrets = var.create_database ? {
    DAGSTER_PG_USERNAME = "${aws_db_instance.dagster[0].master_user_secret[0].secret_arn}:username::"
    DAGSTER_PG_PASSWORD = "${aws_db_instance.dagster[0].master_user_secret[0].secret_arn}:password::"
  } : {}

  environment = [
    for name, value in merge(var.environment, local.database_environment, { DAGSTER_HOME = local.dagster_home }) :
    { name = name, value = value }
  ]
  secrets = [
    for name, value_from in merge(var.secret_environment, local.database_secrets) :
    { name = name, valueFrom = value_from }
  ]
  # A valueFrom may name a JSON key (ARN:key::); the policy needs the secret's own ARN.
  secret_arns = distinct([
    for value_from in values(merge(var.secret_environment, local.database_secrets)) :
    regex("^arn:[^:]+:secretsmanager:[^:]+:[^:]+:secret:[^:]+", value_from)
  ])

  services = {
    webserver = {
      cpu     = var.webserver_cpu
      memory  = var.webserver_memory
      command = ["dagster-webserver", "--host", "0.0.0.0", "--port", "3000", "--module-name", "dagster_project.definitions"]
      ports   = [{ containerPort = 3000, protocol = "tcp" }]
    }
    daemon = {
      cpu     = var.daemon_cpu
      memory  = var.daemon_memory
      command = ["dagster-daemon", "run", "--module-name", "dagster_project.definitions"]
      ports   = []
    }
  }
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name_prefix}-dagster"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "dagster" {
  name              = "/ecs/${var.name_prefix}-dagster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- network -------------------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.name_prefix}-dagster-tasks"
  description = "Dagster webserver and daemon"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "AWS APIs, the image registry and the destinations' APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "tasks_database" {
  count = var.create_database ? 1 : 0

  security_group_id            = aws_security_group.tasks.id
  description                  = "Dagster's storage"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database[0].id
}

resource "aws_security_group" "database" {
  count = var.create_database ? 1 : 0

  name        = "${var.name_prefix}-dagster-db"
  description = "Dagster's Postgres storage: reachable from the Dagster tasks only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "database_from_tasks" {
  count = var.create_database ? 1 : 0

  security_group_id            = aws_security_group.database[0].id
  description                  = "Postgres from the Dagster tasks"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.tasks.id
}

# --- Dagster's storage -------------------------------------------------------------------------

resource "aws_db_subnet_group" "dagster" {
  count = var.create_database ? 1 : 0

  name       = "${var.name_prefix}-dagster"
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_db_parameter_group" "dagster" {
  count = var.create_database ? 1 : 0

  name   = "${var.name_prefix}-dagster"
  family = "postgres${split(".", var.db_engine_version)[0]}"

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  tags = var.tags
}

resource "aws_db_instance" "dagster" {
  #checkov:skip=CKV_AWS_157:Multi-AZ is the variable db_multi_az: on in prod, off in dev to halve its cost.
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs a monitoring role per account; Performance Insights and the exported Postgres logs cover Dagster's small database.
  count = var.create_database ? 1 : 0

  identifier                          = "${var.name_prefix}-dagster"
  engine                              = "postgres"
  engine_version                      = var.db_engine_version
  instance_class                      = var.db_instance_class
  allocated_storage                   = var.db_allocated_storage
  db_name                             = local.database
  username                            = "dagster"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = var.kms_key_arn
  storage_encrypted                   = true
  kms_key_id                          = var.kms_key_arn
  db_subnet_group_name                = aws_db_subnet_group.dagster[0].name
  parameter_group_name                = aws_db_parameter_group.dagster[0].name
  vpc_security_group_ids              = [aws_security_group.database[0].id]
  multi_az                            = var.db_multi_az
  publicly_accessible                 = false
  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  backup_retention_period             = var.db_backup_retention_days
  deletion_protection                 = var.db_deletion_protection
  skip_final_snapshot                 = !var.db_deletion_protection
  final_snapshot_identifier           = var.db_deletion_protection ? "${var.name_prefix}-dagster-final" : null
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = var.kms_key_arn
  tags                                = var.tags
}

# --- roles ---------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role starts the containers: pull the image, write the logs, read the secrets.
resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-dagster-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "LogInToTheRegistry"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # the action takes no resource
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = var.image_repository_arns
  }

  statement {
    sid       = "WriteTheLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.dagster.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(local.secret_arns) == 0 ? [] : [1]

    content {
      sid       = "ReadTheSecretSettings"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }

  statement {
    sid       = "DecryptTheSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-dagster"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The task role is what Dagster itself may do: launch the runs' jobs (launcher_policy_json).
resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-dagster-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "launch-jobs"
  role   = aws_iam_role.task.id
  policy = var.launcher_policy_json
}

# --- webserver and daemon ----------------------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  for_each = local.services

  family                   = "${var.name_prefix}-dagster-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # DAGSTER_HOME and /tmp are the only writable paths: the image's files stay read-only.
  volume {
    name = "dagster-home"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = each.key
    image                  = var.code_location_image
    essential              = true
    command                = each.value.command
    portMappings           = each.value.ports
    environment            = local.environment
    secrets                = local.secrets
    readonlyRootFilesystem = true
    mountPoints = [
      { sourceVolume = "dagster-home", containerPath = local.dagster_home, readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.dagster.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = each.key
      }
    }
  }])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  for_each = local.services

  name             = each.key
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this[each.key].arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  tags = var.tags
}
