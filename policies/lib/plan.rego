# Helpers shared by the rules: what a plan changes, tags, and references between resources.
# Input is Terraform's plan JSON (`terraform show -json <plan>`), format_version 0.x/1.x.
package tollgate.lib

import rego.v1

# Resources the plan creates or updates, by address: what a rule judges. Deletes and no-ops
# are left alone (a rule cannot make a deletion safer).
changed[rc.address] := rc if {
	some rc in input.resource_changes
	object.get(rc, "mode", "managed") == "managed"
	some action in rc.change.actions
	action in {"create", "update"}
}

# Changed resources of one type, by address.
of_type(type) := {address: rc | some address, rc in changed; rc.type == type}

# Every resource the plan leaves in place or creates (not deleted), by address: what a rule
# looks for when it asks "is there a companion resource?".
present[rc.address] := rc if {
	some rc in input.resource_changes
	object.get(rc, "mode", "managed") == "managed"
	not "delete" in rc.change.actions
}

# Planned values of a change (`after`; unknown values are absent, listed in `after_unknown`).
after(rc) := object.get(rc.change, "after", {})

# A resource type that takes tags has `tags` (and the AWS provider's `tags_all`) in its values.
taggable(rc) if "tags" in object.keys(after(rc))

taggable(rc) if "tags_all" in object.keys(after(rc))

# Tags including the provider's default tags (`tags_all`), over the resource's own.
tags(rc) := object.union(tag_map(rc, "tags"), tag_map(rc, "tags_all"))

tag_map(rc, key) := m if {
	m := after(rc)[key]
	is_object(m)
} else := {}

# A tag is present with a non-empty value, or will be known after apply.
has_tag(rc, name) if {
	value := tags(rc)[name]
	is_string(value)
	value != ""
}

has_tag(rc, name) if unknown(rc, ["tags_all", name])

has_tag(rc, name) if unknown(rc, ["tags", name])

# A planned value only known after apply: the attribute, or a map holding it, is unknown.
unknown(rc, path) if {
	some i in numbers.range(1, count(path))
	object.get(object.get(rc.change, "after_unknown", {}), array.slice(path, 0, i), false) == true
}

# The resource addresses an attribute of a resource refers to in the configuration (root
# module): `aws_s3_bucket.this.id` names `aws_s3_bucket.this`.
refers_to(address, attr, target) if {
	some r in input.configuration.root_module.resources
	r.address == address
	some ref in r.expressions[attr].references
	startswith(sprintf("%s.", [ref]), sprintf("%s.", [target]))
}

# Does the resource at `address` point at `target` through `attr`? By configuration reference,
# or by equal known values (`target_attr` of the target, e.g. a bucket's name).
points_at(address, rc, attr, target, target_rc, target_attr) if refers_to(address, attr, target)

points_at(_, rc, attr, _, target_rc, target_attr) if {
	value := after(rc)[attr]
	value != null
	value == after(target_rc)[target_attr]
}

# A list attribute, or [] when it is null or absent.
list(x) := x if {
	is_array(x)
} else := []

# The attribute as a list (null and absent as []).
list_attr(obj, key) := list(object.get(obj, key, []))
