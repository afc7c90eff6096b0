variable "instance_type" {
  type        = string
  default     = "t3.micro"
  description = "EC2 instance type"
}

variable "volume_size_gb" {
  type        = number
  default     = 20
  description = "Root volume size in GiB (gp3)"
}

locals {
  # Amazon Linux 2023 (x86_64) AMIs per region; refresh from the SSM parameter
  # /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64.
  amis = {
    "us-east-1" = "ami-0fff1b9a61dec8a5f"
    "eu-west-1" = "ami-0d64bb532e0502c46"
  }
}

resource "aws_security_group" "this" {
  name        = "${var.name}-sg"
  description = "Tollgate ${var.request_id}: SSH from the private network only"

  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = local.tags
}

resource "aws_instance" "this" {
  ami                    = local.amis[var.region]
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.this.id]

  root_block_device {
    volume_type = "gp3"
    volume_size = var.volume_size_gb
    encrypted   = true
  }

  metadata_options {
    http_tokens = "required"
  }

  tags = local.tags
}

output "instance_id" {
  value = aws_instance.this.id
}

output "private_ip" {
  value = aws_instance.this.private_ip
}

output "security_group_id" {
  value = aws_security_group.this.id
}
