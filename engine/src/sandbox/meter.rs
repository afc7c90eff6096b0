//! What the sandbox cloud bills: each resource a request holds, with the usage its meter
//! read. The meter is a file the sandbox's operator (or a test) writes, `meter.toml` under the
//! sandbox root; a resource it does not name is billed as it was declared.
//!
//! ```toml
//! [[usage]]
//! request_id = "req-s3-1a2b3c4d"
//! address = "aws_s3_bucket.this"
//! storage_gb = 500
//! ```

use serde::Deserialize;

use super::cloud::Cloud;
use crate::{EngineError, MeteredResource};

/// The meter's file under the sandbox root.
pub const METER_FILE: &str = "meter.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meter {
    #[serde(default)]
    usage: Vec<Metered>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metered {
    request_id: String,
    address: String,
    storage_gb: Option<f64>,
}

/// `request_id`'s resources with what the meter read for each.
pub fn bill(cloud: &Cloud, request_id: &str) -> Result<Vec<MeteredResource>, EngineError> {
    let path = cloud.root.join(METER_FILE);
    let meter: Meter = match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Meter::default(),
        Err(e) => return Err(EngineError::io(format!("reading {}", path.display()), e)),
    };
    let inventory = cloud.inventory(request_id)?;
    Ok(inventory
        .resources
        .into_iter()
        .map(|r| {
            let read = meter.usage.iter().find(|m| m.request_id == request_id && m.address == r.address);
            MeteredResource {
                address: r.address,
                resource_type: r.resource_type,
                attributes: r.attributes,
                storage_gb: read.and_then(|m| m.storage_gb),
            }
        })
        .collect())
}
