terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # State in S3, locked with S3's own lock file (Terraform >= 1.10). The bucket and region
  # are the account's: terraform init -backend-config=backend.hcl (see backend.hcl.example).
  backend "s3" {
    key          = "lakehouse-cdp/prod/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
