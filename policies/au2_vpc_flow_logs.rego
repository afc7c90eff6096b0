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

logged(address, rc) if {
	some log_address, log in lib.present
	log.type == "aws_flow_log"
	lib.points_at(log_address, log, "vpc_id", address, rc, "id")
}

findings contains finding if {
	some rc in input.resource_changes
	rc.type == "aws_vpc"
	"create" in rc.change.actions
	not logged(rc.address, rc)
	finding := {"address": rc.address, "message": "new VPC without a flow log: add an aws_flow_log with vpc_id pointing at it"}
}
