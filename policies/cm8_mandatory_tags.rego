# CM-8 (system component inventory): every taggable resource says who owns it, where it runs,
# which request made it and when it goes away, so the inventory can be read from the cloud.
package tollgate.rules.mandatory_tags

import data.tollgate.lib
import rego.v1

rule := {
	"id": "mandatory-tags",
	"control": "CM-8",
	"level": "deny",
	"title": "Taggable resources carry Owner, Environment, RequestId and ExpiresAt",
}

required := ["Owner", "Environment", "RequestId", "ExpiresAt"]

findings contains finding if {
	some address, gaps in lib.tag_gaps
	missing := [name | some name in required; name in gaps]
	count(missing) > 0
	finding := {
		"address": address,
		"message": sprintf("missing tag(s) %s; tag it through the provider's default_tags or the resource's tags", [concat(", ", missing)]),
	}
}
