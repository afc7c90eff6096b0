# SC-8 (transmission confidentiality and integrity): a listener the internet can reach speaks
# TLS; plain HTTP is allowed only to redirect to HTTPS.
package tollgate.rules.tls_listeners

import data.tollgate.lib
import rego.v1

rule := {
	"id": "tls-listeners",
	"control": "SC-8",
	"level": "deny",
	"title": "Public load balancer listeners use HTTPS or TLS (HTTP only to redirect to HTTPS)",
}

listener_types := {"aws_lb_listener", "aws_alb_listener"}

balancer_types := {"aws_lb", "aws_alb"}

# Listeners of internal load balancers: by configuration reference, or by the known ARN.
internal_balancers := {address |
	some type in balancer_types
	some address, lb in lib.present_of_type(type)
	lb.change.after.internal == true
}

internal_listeners contains from if {
	some [from, "load_balancer_arn", lb] in lib.pointers
	lb in internal_balancers
}

internal_arns contains arn if {
	some address in internal_balancers
	arn := lib.after(lib.present[address]).arn
	is_string(arn)
}

internal(address, _) if address in internal_listeners

internal(_, rc) if rc.change.after.load_balancer_arn in internal_arns

redirects_to_https(rc) if {
	actions := lib.list_attr(rc.change.after, "default_action")
	count(actions) > 0
	every action in actions {
		action.type == "redirect"
		some redirect in lib.list_attr(action, "redirect")
		upper(redirect.protocol) == "HTTPS"
	}
}

findings contains finding if {
	some type in listener_types
	some address, rc in lib.of_type(type)
	protocol := upper(object.get(rc.change.after, "protocol", "HTTP"))
	not protocol in {"HTTPS", "TLS"}
	not internal(address, rc)
	not redirects_to_https(rc)
	finding := {
		"address": address,
		"message": sprintf("public listener on port %v speaks %s: use HTTPS or TLS with a certificate, or redirect to HTTPS", [object.get(rc.change.after, "port", "?"), protocol]),
	}
}

# Classic load balancers list their listeners inline.
findings contains finding if {
	some address, rc in lib.of_type("aws_elb")
	rc.change.after.internal != true
	some listener in lib.list_attr(rc.change.after, "listener")
	not upper(listener.lb_protocol) in {"HTTPS", "SSL"}
	finding := {
		"address": address,
		"message": sprintf("public listener on port %v speaks %s: use HTTPS or SSL", [listener.lb_port, upper(listener.lb_protocol)]),
	}
}
