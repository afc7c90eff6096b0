# SC-28 (protection of information at rest): databases, volumes and buckets are encrypted.
package tollgate.rules.encryption_at_rest

import data.tollgate.lib
import rego.v1

rule := {
	"id": "encryption-at-rest",
	"control": "SC-28",
	"level": "deny",
	"title": "RDS storage, EBS volumes and S3 buckets are encrypted at rest",
}

findings contains finding if {
	some type in ["aws_db_instance", "aws_rds_cluster"]
	some address, rc in lib.of_type(type)
	rc.change.after.storage_encrypted != true
	finding := {"address": address, "message": "storage is not encrypted: set storage_encrypted = true"}
}

findings contains finding if {
	some address, rc in lib.of_type("aws_ebs_volume")
	rc.change.after.encrypted != true
	finding := {"address": address, "message": "volume is not encrypted: set encrypted = true"}
}

findings contains finding if {
	some address, rc in lib.of_type("aws_instance")
	some block in ["root_block_device", "ebs_block_device"]
	some device in lib.list_attr(rc.change.after, block)
	device.encrypted != true
	finding := {
		"address": address,
		"message": sprintf("%s %s is not encrypted: set encrypted = true", [block, object.get(device, "device_name", "")]),
	}
}

# A bucket is encrypted by an inline block (provider v3) or a companion resource.
sse_type := "aws_s3_bucket_server_side_encryption_configuration"

encrypted_buckets contains bucket if {
	some [from, "bucket", bucket] in lib.pointers
	lib.present[from].type == sse_type
}

encrypted_names contains name if {
	some sse in lib.present_of_type(sse_type)
	name := sse.change.after.bucket
	is_string(name)
}

# Buckets with an encryption configuration: inline, by reference, or by known name.
encrypted := encrypted_buckets | {address |
	some address, rc in lib.of_type("aws_s3_bucket")
	rc.change.after.bucket in encrypted_names
} | {address |
	some address, rc in lib.of_type("aws_s3_bucket")
	count(lib.list_attr(rc.change.after, "server_side_encryption_configuration")) > 0
}

findings contains finding if {
	some address, rc in lib.of_type("aws_s3_bucket")
	not address in encrypted
	finding := {
		"address": address,
		"message": "bucket has no server-side encryption configuration: add an aws_s3_bucket_server_side_encryption_configuration for it",
	}
}
