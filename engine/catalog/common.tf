# Shared by every catalog module: identity variables, tags and the provider.
terraform {
  required_version = ">= 1.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "name" {
  type        = string
  description = "Resource name"
}

variable "region" {
  type        = string
  description = "AWS region"
}

variable "owner" {
  type        = string
  description = "Who asked for it (the requester)"
}

variable "environment" {
  type        = string
  description = "dev, staging or prod"
}

variable "request_id" {
  type        = string
  description = "Tollgate request id (the workflow id)"
}

variable "expires_at" {
  type        = string
  description = "When Tollgate destroys it (RFC 3339)"
}

variable "iac_version" {
  type        = string
  description = "The module version that made it (catalog:<kind>@<version>), for the IacVersion tag"
}

locals {
  tags = {
    Name        = var.name
    Owner       = var.owner
    Environment = var.environment
    RequestId   = var.request_id
    ExpiresAt   = var.expires_at
    IacVersion  = var.iac_version
    ManagedBy   = "tollgate"
  }
}

provider "aws" {
  region = var.region
  # Tags every taggable resource, including ones without a tags argument of their own.
  default_tags {
    tags = local.tags
  }
}
