variable "instance_class" {
  type        = string
  default     = "db.t3.micro"
  description = "RDS instance class"
}

variable "allocated_storage_gb" {
  type        = number
  default     = 20
  description = "Allocated storage in GiB (gp2)"
}

resource "aws_db_instance" "this" {
  identifier        = var.name
  engine            = "postgres"
  engine_version    = "16"
  instance_class    = var.instance_class
  allocated_storage = var.allocated_storage_gb
  storage_type      = "gp2"
  storage_encrypted = true
  multi_az          = false
  username          = "tollgate"
  # RDS keeps the password in Secrets Manager: no secret in plan or state.
  manage_master_user_password = true
  publicly_accessible         = false
  backup_retention_period     = 1
  skip_final_snapshot         = true
  tags                        = local.tags
}

output "endpoint" {
  value = aws_db_instance.this.endpoint
}

output "address" {
  value = aws_db_instance.this.address
}

output "port" {
  value = aws_db_instance.this.port
}

output "master_user_secret_arn" {
  value = aws_db_instance.this.master_user_secret[0].secret_arn
}
