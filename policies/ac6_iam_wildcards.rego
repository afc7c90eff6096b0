# AC-6 (least privilege): IAM policies name the actions and resources they allow; a wildcard
# grants more than anyone reviewed.
package tollgate.rules.iam_wildcards

import data.tollgate.lib
import rego.v1

rule := {
	"id": "iam-wildcards",
	"control": "AC-6",
	"level": "deny",
	"title": "IAM policies allow no wildcard actions or resources",
}

# Resource types whose `policy` attribute is an IAM policy document (JSON).
policy_types := {"aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"}

documents contains [address, rc.change.after.policy] if {
	some type in policy_types
	some address, rc in lib.of_type(type)
	is_string(rc.change.after.policy)
}

# Inline policies of a role.
documents contains [address, inline.policy] if {
	some address, rc in lib.of_type("aws_iam_role")
	some inline in lib.list_attr(rc.change.after, "inline_policy")
	is_string(inline.policy)
}

statements(doc) := [doc.Statement] if is_object(doc.Statement)

statements(doc) := doc.Statement if is_array(doc.Statement)

as_list(x) := [x] if is_string(x)

as_list(x) := x if is_array(x)

wildcard_action(action) if action == "*"

wildcard_action(action) if endswith(action, ":*")

findings contains finding if {
	some [address, text] in documents
	some statement in statements(json.unmarshal(text))
	statement.Effect == "Allow"
	some action in as_list(statement.Action)
	wildcard_action(action)
	finding := {"address": address, "message": sprintf("allows the wildcard action %q: list the actions it needs", [action])}
}

findings contains finding if {
	some [address, text] in documents
	some statement in statements(json.unmarshal(text))
	statement.Effect == "Allow"
	statement.NotAction
	finding := {"address": address, "message": "allows everything but a list (NotAction): list the actions it needs"}
}

findings contains finding if {
	some [address, text] in documents
	some statement in statements(json.unmarshal(text))
	statement.Effect == "Allow"
	some resource in as_list(statement.Resource)
	resource == "*"
	finding := {"address": address, "message": "allows actions on every resource (\"*\"): name the ARNs it needs"}
}
