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

blocked(address, rc) if {
	some pab_address, pab in lib.present
	pab.type == "aws_s3_bucket_public_access_block"
	lib.points_at(pab_address, pab, "bucket", address, rc, "bucket")
	every setting in settings {
		lib.after(pab)[setting] == true
	}
}

findings contains finding if {
	some address, rc in lib.of_type("aws_s3_bucket")
	not blocked(address, rc)
	finding := {
		"address": address,
		"message": "public access is not blocked: add an aws_s3_bucket_public_access_block for it with all four settings true",
	}
}

public_acls := {"public-read", "public-read-write", "authenticated-read"}

findings contains finding if {
	some address, rc in lib.changed
	rc.type in {"aws_s3_bucket", "aws_s3_bucket_acl"}
	acl := object.get(lib.after(rc), "acl", null)
	acl in public_acls
	finding := {"address": address, "message": sprintf("grants the public ACL %q: use private and share through IAM", [acl])}
}
