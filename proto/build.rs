fn main() -> std::io::Result<()> {
    let mut config = prost_build::Config::new();
    // Maps must iterate in a stable order: workflow code reads these types.
    config.btree_map(["."]);
    // Payloads travel through Temporal's JSON payload converter; `default` lets newer
    // fields be absent in older histories.
    config.type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]");
    config.message_attribute(".", "#[serde(default)]");
    config.compile_protos(&["tollgate/v1/tollgate.proto"], &["."])?;
    println!("cargo:rerun-if-changed=tollgate/v1/tollgate.proto");
    Ok(())
}
