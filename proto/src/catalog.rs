//! The vetted catalog's contract: which kinds exist and which parameters each takes.
//! The Terraform modules themselves live with the engine; a test there checks that every
//! module declares exactly these variables.

use crate::ProvisionRequest;

/// How a parameter's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRule {
    /// One of a fixed list.
    OneOf(&'static [&'static str]),
    /// A whole number in an inclusive range.
    Integer { min: u64, max: u64 },
    /// `true` or `false`.
    Boolean,
}

/// One parameter of a catalog kind.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub default: &'static str,
    pub rule: ParamRule,
}

/// One kind of resource a developer may request.
#[derive(Debug, Clone, Copy)]
pub struct KindSpec {
    pub kind: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
}

/// Regions the catalog (and the price book) cover.
pub const REGIONS: &[&str] = &["us-east-1", "eu-west-1"];

/// Environments a request may target; `prod` always needs approval.
pub const ENVIRONMENTS: &[&str] = &["dev", "staging", "prod"];

pub const EC2_INSTANCE_TYPES: &[&str] =
    &["t3.micro", "t3.small", "t3.medium", "t3.large", "m5.large", "m5.xlarge", "m5.2xlarge"];
pub const RDS_INSTANCE_CLASSES: &[&str] =
    &["db.t3.micro", "db.t3.small", "db.t3.medium", "db.m5.large", "db.m5.xlarge", "db.r5.large", "db.r5.2xlarge"];

pub const CATALOG: &[KindSpec] = &[
    KindSpec {
        kind: "ec2",
        summary: "an EC2 instance with its own security group and a gp3 root volume",
        params: &[
            ParamSpec {
                name: "instance_type",
                description: "EC2 instance type",
                default: "t3.micro",
                rule: ParamRule::OneOf(EC2_INSTANCE_TYPES),
            },
            ParamSpec {
                name: "volume_size_gb",
                description: "root volume size in GiB (gp3)",
                default: "20",
                rule: ParamRule::Integer { min: 8, max: 2048 },
            },
        ],
    },
    KindSpec {
        kind: "s3",
        summary: "a private, encrypted S3 bucket",
        params: &[
            ParamSpec {
                name: "storage_gb",
                description: "expected stored data in GB, used for the cost estimate",
                default: "50",
                rule: ParamRule::Integer { min: 1, max: 1_000_000 },
            },
            ParamSpec {
                name: "versioning",
                description: "keep object versions",
                default: "false",
                rule: ParamRule::Boolean,
            },
        ],
    },
    KindSpec {
        kind: "rds",
        summary: "a PostgreSQL RDS instance (single-AZ, gp2 storage, encrypted)",
        params: &[
            ParamSpec {
                name: "instance_class",
                description: "RDS instance class",
                default: "db.t3.micro",
                rule: ParamRule::OneOf(RDS_INSTANCE_CLASSES),
            },
            ParamSpec {
                name: "allocated_storage_gb",
                description: "allocated storage in GiB",
                default: "20",
                rule: ParamRule::Integer { min: 20, max: 4096 },
            },
        ],
    },
];

/// The catalog entry for `kind`, if it exists.
pub fn kind_spec(kind: &str) -> Option<&'static KindSpec> {
    CATALOG.iter().find(|k| k.kind == kind)
}

/// Names of all catalog kinds, for messages.
pub fn kind_names() -> Vec<&'static str> {
    CATALOG.iter().map(|k| k.kind).collect()
}

impl ParamRule {
    /// Checks one value; the error says what is allowed.
    pub fn check(&self, value: &str) -> Result<(), String> {
        match self {
            ParamRule::OneOf(allowed) if allowed.contains(&value) => Ok(()),
            ParamRule::OneOf(allowed) => Err(format!("must be one of {}", allowed.join(", "))),
            ParamRule::Integer { min, max } => match value.parse::<u64>() {
                Ok(n) if (*min..=*max).contains(&n) => Ok(()),
                _ => Err(format!("must be a whole number from {min} to {max}")),
            },
            ParamRule::Boolean if value == "true" || value == "false" => Ok(()),
            ParamRule::Boolean => Err("must be true or false".to_string()),
        }
    }
}
/// Fills defaults (vendor, environment, region, name, params) so the stored request says
/// exactly what will be built.
pub fn with_defaults(mut request: ProvisionRequest) -> ProvisionRequest {
    if request.vendor.is_empty() {
        request.vendor = "aws".into();
    }
    if request.environment.is_empty() {
        request.environment = "dev".into();
    }
    if request.region.is_empty() {
        request.region = REGIONS[0].into();
    }
    if request.name.is_empty() {
        request.name = request.request_id.clone();
    }
    if let Some(spec) = kind_spec(&request.kind) {
        for p in spec.params {
            request.params.entry(p.name.to_string()).or_insert_with(|| p.default.to_string());
        }
    }
    request
}
