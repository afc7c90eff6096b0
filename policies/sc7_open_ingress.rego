# SC-7 (boundary protection): nothing is reachable from the whole internet except HTTPS.
package tollgate.rules.open_ingress

import data.tollgate.lib
import rego.v1

rule := {
	"id": "open-ingress",
	"control": "SC-7",
	"level": "deny",
	"title": "No ingress from 0.0.0.0/0 or ::/0 except on port 443",
}

anywhere := {"0.0.0.0/0", "::/0"}

# Only TCP 443 (HTTPS) may be open to the internet.
https_only(from_port, to_port, protocol) if {
	from_port == 443
	to_port == 443
	lower(sprintf("%v", [protocol])) in {"tcp", "6"}
}

# Ingress entries as [address, from, to, protocol, cidrs].
entries contains [address, i.from_port, i.to_port, i.protocol, cidrs] if {
	some address, rc in lib.of_type("aws_security_group")
	some i in lib.list_attr(rc.change.after, "ingress")
	cidrs := array.concat(lib.list_attr(i, "cidr_blocks"), lib.list_attr(i, "ipv6_cidr_blocks"))
}

entries contains [address, a.from_port, a.to_port, a.protocol, cidrs] if {
	some address, rc in lib.of_type("aws_security_group_rule")
	a := rc.change.after
	a.type == "ingress"
	cidrs := array.concat(lib.list_attr(a, "cidr_blocks"), lib.list_attr(a, "ipv6_cidr_blocks"))
}

entries contains [address, a.from_port, a.to_port, a.ip_protocol, [a.cidr_ipv4, a.cidr_ipv6]] if {
	some address, rc in lib.of_type("aws_vpc_security_group_ingress_rule")
	a := object.union({"cidr_ipv4": null, "cidr_ipv6": null, "from_port": null, "to_port": null}, rc.change.after)
}

# "tcp ports 22-22", or "all protocols and ports" for protocol -1.
ports(protocol, from_port, to_port) := "all protocols and ports" if {
	sprintf("%v", [protocol]) == "-1"
} else := sprintf("%v ports %v-%v", [protocol, from_port, to_port])

findings contains finding if {
	some [address, from_port, to_port, protocol, cidrs] in entries
	some cidr in cidrs
	cidr in anywhere
	not https_only(from_port, to_port, protocol)
	finding := {
		"address": address,
		"message": sprintf("ingress from %s on %s: only TCP 443 may be open to the internet; narrow the CIDR", [cidr, ports(protocol, from_port, to_port)]),
	}
}
