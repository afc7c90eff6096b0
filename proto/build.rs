use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = out.join("tollgate_descriptors.bin");
    let mut config = prost_build::Config::new();
    // Maps must iterate in a stable order: workflow code reads these types.
    config.btree_map(["."]);
    config.file_descriptor_set_path(&descriptors);
    // Timestamps and durations come with the protobuf JSON mapping (RFC 3339, "300s").
    config.compile_well_known_types();
    config.extern_path(".google.protobuf", "::pbjson_types");
    // `google/protobuf/*.proto` are vendored beside ours, so only protoc itself is needed.
    config.compile_protos(&["tollgate/v1/tollgate.proto"], &["."])?;
    // Payloads travel as the protobuf JSON mapping (enum names, RFC 3339 times) with the proto
    // field names, so the Web UI, `temporal workflow query` and other SDKs read them. Unknown
    // fields are ignored so that older code reads newer payloads.
    let descriptor_set = std::fs::read(&descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_set)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .btree_map(["."])
        .build(&[".tollgate"])?;
    println!("cargo:rerun-if-changed=tollgate/v1/tollgate.proto");
    Ok(())
}
