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
	some address, rc in lib.changed
	lib.taggable(rc)
	not lib.has_tag(rc, lib.tags(rc), "IacVersion")
	finding := {
		"address": address,
		"message": "no IacVersion tag: tag the resource with the module's version (Tollgate passes it as tags.IacVersion)",
	}
}
