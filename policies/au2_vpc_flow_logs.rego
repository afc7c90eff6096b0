# AU-2 (event logging): every new VPC records its traffic with a flow log.
package tollgate.rules.vpc_flow_logs

import data.tollgate.lib
import rego.v1

rule := {
	"id": "vpc-flow-logs",
	"control": "AU-2",
	"level": "approval",
	"title": "Every new VPC has a flow log",
}

logged_vpcs contains vpc if {
	some [from, "vpc_id", vpc] in lib.pointers
	lib.present[from].type == "aws_flow_log"
}

logged_ids contains id if {
	some log in lib.present_of_type("aws_flow_log")
	id := log.change.after.vpc_id
	is_string(id)
}

logged(address, _) if address in logged_vpcs

logged(_, rc) if rc.change.after.id in logged_ids

findings contains finding if {
	some address, rc in lib.of_type("aws_vpc")
	"create" in rc.change.actions
	not logged(address, rc)
	finding := {"address": address, "message": "new VPC without a flow log: add an aws_flow_log with vpc_id pointing at it"}
}
