# CM-2 (baseline configuration): container images are pinned; `:latest` (or no tag) runs
# whatever was pushed last, not what was reviewed.
package tollgate.rules.pinned_images

import data.tollgate.lib
import rego.v1

rule := {
	"id": "pinned-images",
	"control": "CM-2",
	"level": "approval",
	"title": "Container images name a tag other than latest, or a digest",
}

image_keys := {"image", "image_uri"}

# Image references anywhere in a resource's planned values, and inside ECS container
# definitions (a JSON string).
images contains [address, value] if {
	some address, rc in lib.changed
	contains(json.marshal(rc.change.after), "image") # cheap filter before the walk
	walk(rc.change.after, [path, value])
	count(path) > 0
	path[count(path) - 1] in image_keys
	is_string(value)
}

images contains [address, container.image] if {
	some address, rc in lib.of_type("aws_ecs_task_definition")
	is_string(rc.change.after.container_definitions)
	some container in json.unmarshal(rc.change.after.container_definitions)
	is_string(container.image)
}

# The tag of `registry/name:tag` (a port in the registry is not a tag).
tag(image) := parts[count(parts) - 1] if {
	last := split(image, "/")
	name := last[count(last) - 1]
	parts := split(name, ":")
	count(parts) > 1
} else := ""

unpinned(image) if {
	not contains(image, "@")
	tag(image) in {"", "latest"}
}

findings contains finding if {
	some [address, image] in images
	unpinned(image)
	finding := {"address": address, "message": sprintf("image %q is not pinned: name a version tag or a digest (@sha256:...)", [image])}
}
