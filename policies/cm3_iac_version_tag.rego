# CM-3 (configuration change control): every taggable resource names the version of the
# infrastructure code that made it (`IacVersion`), so a change can be traced to its source.
package tollgate.rules.iac_version_tag

import data.tollgate.lib
import rego.v1

rule := {
	"id": "iac-version-tag",
	"control": "CM-3",
	"level": "warn",
	"title": "Taggable resources carry an IacVersion tag naming the code that made them",
}

findings contains finding if {
	some address, gaps in lib.tag_gaps
	"IacVersion" in gaps
	finding := {
		"address": address,
		"message": "no IacVersion tag: tag the resource with the module's version (Tollgate passes it as tags.IacVersion)",
	}
}
