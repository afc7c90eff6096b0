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

# An internal load balancer the listener belongs to (by reference or by known ARN).
internal(address, rc) if {
	some lb_address, lb in lib.present
	lb.type in balancer_types
	lib.points_at(address, rc, "load_balancer_arn", lb_address, lb, "arn")
	lib.after(lb).internal == true
}

redirects_to_https(rc) if {
	actions := lib.list_attr(lib.after(rc), "default_action")
	count(actions) > 0
	every action in actions {
		action.type == "redirect"
		some redirect in lib.list_attr(action, "redirect")
		upper(redirect.protocol) == "HTTPS"
	}
}

findings contains finding if {
	some address, rc in lib.changed
	rc.type in listener_types
	protocol := upper(object.get(lib.after(rc), "protocol", "HTTP"))
	not protocol in {"HTTPS", "TLS"}
	not internal(address, rc)
	not redirects_to_https(rc)
	finding := {
		"address": address,
		"message": sprintf("public listener on port %v speaks %s: use HTTPS or TLS with a certificate, or redirect to HTTPS", [object.get(lib.after(rc), "port", "?"), protocol]),
	}
}

# Classic load balancers list their listeners inline.
findings contains finding if {
	some address, rc in lib.of_type("aws_elb")
	lib.after(rc).internal != true
	some listener in lib.list_attr(lib.after(rc), "listener")
	not upper(listener.lb_protocol) in {"HTTPS", "SSL"}
	finding := {
		"address": address,
		"message": sprintf("public listener on port %v speaks %s: use HTTPS or SSL", [listener.lb_port, upper(listener.lb_protocol)]),
	}
}
