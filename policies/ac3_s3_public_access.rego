# AC-3 (access enforcement): a bucket blocks public access, so no ACL or bucket policy can
# publish its objects by mistake.
package tollgate.rules.s3_public_access

import data.tollgate.lib
import rego.v1

rule := {
	"id": "s3-public-access",
	"control": "AC-3",
	"level": "deny",
	"title": "S3 buckets block public access (all four settings) and grant no public ACL",
}

settings := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

# Access blocks with all four settings on, by address.
full_blocks := {address: pab |
	some address, pab in lib.present_of_type("aws_s3_bucket_public_access_block")
	every setting in settings {
		pab.change.after[setting] == true
	}
}

# Buckets those blocks point at: by configuration reference, or by the bucket's known name.
blocked_buckets contains bucket if {
	some [from, "bucket", bucket] in lib.pointers
	full_blocks[from]
}

blocked_names contains name if {
	some pab in full_blocks
	name := pab.change.after.bucket
	is_string(name)
}

# Buckets with a full block: by reference, or by their known name.
blocked := blocked_buckets | {address |
	some address, rc in lib.of_type("aws_s3_bucket")
	rc.change.after.bucket in blocked_names
}

findings contains finding if {
	some address, rc in lib.of_type("aws_s3_bucket")
	not address in blocked
	finding := {
		"address": address,
		"message": "public access is not blocked: add an aws_s3_bucket_public_access_block for it with all four settings true",
	}
}

public_acls := {"public-read", "public-read-write", "authenticated-read"}

findings contains finding if {
	some type in ["aws_s3_bucket", "aws_s3_bucket_acl"]
	some address, rc in lib.of_type(type)
	acl := object.get(rc.change.after, "acl", null)
	acl in public_acls
	finding := {"address": address, "message": sprintf("grants the public ACL %q: use private and share through IAM", [acl])}
}
