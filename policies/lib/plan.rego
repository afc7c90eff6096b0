# Helpers shared by the rules: what a plan changes, tags, and references between resources.
# Input is Terraform's plan JSON (`terraform show -json <plan>`), format_version 0.x/1.x.
package tollgate.lib

import rego.v1

# The plan's resource changes, indexed by Tollgate's evaluator in one pass
# (`data.tollgate_plan`, see activities/src/policy.rs), so a rule looks up the types it
# judges instead of scanning every resource.

# Resources the plan creates or updates, by address: what a rule judges. Deletes and no-ops
# are left alone (a rule cannot make a deletion safer).
changed := data.tollgate_plan.changed

# Changed resources of one type, by address.
of_type(type) := object.get(data.tollgate_plan.changed_by_type, type, {})

# Every resource the plan leaves in place or creates (not deleted), by address: what a rule
# looks for when it asks "is there a companion resource?".
present := data.tollgate_plan.present

# Present resources of a type, by address.
present_of_type(type) := object.get(data.tollgate_plan.present_by_type, type, {})

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

# The mandatory tags (and IacVersion) each changed taggable resource lacks, by address;
# computed once for the tag rules. Other tags: use has_tag.
tracked_tags := ["Owner", "Environment", "RequestId", "ExpiresAt", "IacVersion"]

tag_gaps := {address: missing |
	some address, values in data.tollgate_plan.tags
	absent := {name | some name in tracked_tags; not nonempty(values, name)}
	count(absent) > 0 # the common case stops here
	missing := {name | some name in absent; not tag_unknown(changed[address], name)}
	count(missing) > 0
}

nonempty(values, name) if {
	value := values[name]
	is_string(value)
	value != ""
}

# References between resources in the configuration (root module), as [from address,
# attribute, to address]: `bucket = aws_s3_bucket.this.id` gives
# ["aws_s3_bucket_public_access_block.this", "bucket", "aws_s3_bucket.this"]. Built by the
# evaluator; rules test membership in sets built from it rather than searching per resource.
pointers := data.tollgate_plan.pointers

# A list attribute, or [] when it is null or absent.
list(x) := x if {
	is_array(x)
} else := []

# The attribute as a list (null and absent as []).
list_attr(obj, key) := list(object.get(obj, key, []))
