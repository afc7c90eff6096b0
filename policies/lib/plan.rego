# Helpers shared by the rules: what a plan changes, tags, and references between resources.
# Input is Terraform's plan JSON (`terraform show -json <plan>`), format_version 0.x/1.x.
package tollgate.lib

import rego.v1

# Resources the plan creates or updates, by address: what a rule judges. Deletes and no-ops
# are left alone (a rule cannot make a deletion safer).
changed := {rc.address: rc |
	some rc in input.resource_changes
	object.get(rc, "mode", "managed") == "managed"
	creates_or_updates(rc)
}

creates_or_updates(rc) if "create" in rc.change.actions

creates_or_updates(rc) if "update" in rc.change.actions

# Changed resources of one type, by address.
of_type(type) := {address: rc | some address, rc in changed; rc.type == type}

# Every resource the plan leaves in place or creates (not deleted), by address: what a rule
# looks for when it asks "is there a companion resource?".
present := {rc.address: rc |
	some rc in input.resource_changes
	object.get(rc, "mode", "managed") == "managed"
	not "delete" in rc.change.actions
}

# Planned values of a change (`after`; unknown values are absent, listed in `after_unknown`).
after(rc) := object.get(rc.change, "after", {})

# A resource type that takes tags has `tags` (and the AWS provider's `tags_all`) in its
# values, even when they are null.
taggable(rc) if _ := after(rc).tags

taggable(rc) if _ := after(rc).tags_all

# Tags including the provider's default tags (`tags_all`), over the resource's own.
tags(rc) := object.union(tag_map(object.get(after(rc), "tags", null)), tag_map(object.get(after(rc), "tags_all", null)))

tag_map(m) := m if {
	is_object(m)
} else := {}

# A tag is set to a non-empty value in `tags`, or will be known only after apply.
has_tag(rc, tags, name) if {
	value := tags[name]
	is_string(value)
	value != ""
}

has_tag(rc, _, name) if tag_unknown(rc, name)

tag_unknown(rc, name) if {
	unknown := object.get(rc.change, "after_unknown", {})
	some key in ["tags_all", "tags"]
	some value in [object.get(unknown, key, false), object.get(unknown, [key, name], false)]
	value == true
}

# References between resources in the configuration (root module), as [from address,
# attribute, to address]: `bucket = aws_s3_bucket.this.id` gives
# ["aws_s3_bucket_public_access_block.this", "bucket", "aws_s3_bucket.this"]. Built once per
# plan; rules test membership in sets built from it rather than searching per resource.
pointers contains [r.address, attr, target] if {
	some r in input.configuration.root_module.resources
	some attr, expr in r.expressions
	is_object(expr) # nested blocks are lists of expression objects: not followed
	some ref in object.get(expr, "references", [])
	parts := split(ref, ".")
	count(parts) >= 2
	not parts[0] in {"var", "local", "data", "module", "each", "count", "path", "self", "terraform"}
	target := concat(".", [parts[0], parts[1]])
}

# Present resources of a type, by address.
present_of_type(type) := {address: rc | some address, rc in present; rc.type == type}

# A list attribute, or [] when it is null or absent.
list(x) := x if {
	is_array(x)
} else := []

# The attribute as a list (null and absent as []).
list_attr(obj, key) := list(object.get(obj, key, []))
