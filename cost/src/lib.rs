//! Prices a Terraform plan with the price book. Anything it cannot price is listed as
//! unpriced with the reason, never counted as $0.

pub mod cost_explorer;
pub mod infracost;
pub mod prices_import;

use std::collections::BTreeMap;
use tollgate_proto::failure::{Classified, FailureType};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tollgate_proto::{CostEstimate, CostLine, UnpricedResource};

/// The price book shipped with Tollgate.
pub const DEFAULT_PRICE_BOOK: &str = include_str!("../data/price_book.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PriceBook {
    pub version: String,
    pub currency: String,
    pub hours_per_month: f64,
    pub free_types: Vec<String>,
    pub assumptions: Vec<String>,
    pub regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RegionPrices {
    /// EBS storage per GB-month by volume type (gp2, gp3, io1, ...).
    pub ebs_gb_month: BTreeMap<String, f64>,
    pub rds_gp2_gb_month: f64,
    pub s3_standard_gb_month: f64,
    pub ec2_hourly: BTreeMap<String, f64>,
    pub rds_postgres_hourly: BTreeMap<String, f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("price book {path}: {message}")]
    BadPriceBook { path: String, message: String },
    #[error("plan JSON has no resource_changes")]
    BadPlan,
}

impl Classified for CostError {
    fn retryable(&self) -> bool {
        match self {
            CostError::BadPriceBook { .. } | CostError::BadPlan => false,
        }
    }

    fn type_name(&self) -> FailureType {
        match self {
            CostError::BadPriceBook { .. } => FailureType::BadPriceBook,
            CostError::BadPlan => FailureType::InvalidModule,
        }
    }
}

impl PriceBook {
    /// Parses a price book; `path` only labels errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, CostError> {
        toml::from_str(text).map_err(|e| CostError::BadPriceBook { path: path.into(), message: e.to_string() })
    }

    /// The book as TOML (the shape `parse` reads).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_PRICE_BOOK, "builtin price_book.toml").expect("the shipped price book parses")
    }

    /// Estimates how the plan changes the monthly bill: what it creates adds its price, what
    /// it destroys subtracts its price, an update adds the difference; no-ops cost nothing new.
    pub fn estimate(&self, plan: &Value, region: &str) -> Result<CostEstimate, CostError> {
        self.estimate_with(plan, region, &Usage::default())
    }

    /// [`estimate`](Self::estimate) with the module's usage assumptions (`usage.toml`).
    pub fn estimate_with(&self, plan: &Value, region: &str, usage: &Usage) -> Result<CostEstimate, CostError> {
        let changes = plan["resource_changes"].as_array().ok_or(CostError::BadPlan)?;
        let mut estimate = CostEstimate {
            currency: self.currency.clone(),
            assumptions: self.assumptions.clone(),
            price_book_version: self.version.clone(),
            ..Default::default()
        };
        let prices = self.regions.get(region);
        // A `storage_gb` variable (the catalog's s3) is the assumption for every bucket.
        let module_gb = plan["variables"]["storage_gb"]["value"].as_f64();
        for change in changes {
            let actions: Vec<&str> =
                change["change"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let (creates, deletes) = (actions.contains(&"create"), actions.contains(&"delete"));
            let updates = actions.contains(&"update");
            if !creates && !deletes && !updates {
                continue; // no-op or read: nothing changes on the bill
            }
            let address = change["address"].as_str().unwrap_or_default().to_string();
            let ty = change["type"].as_str().unwrap_or_default().to_string();
            let usage_gb = usage.storage_gb(&address, plan).or(module_gb);
            let price = |values: &Value| match prices {
                None => Err(format!("no prices for region {region}")),
                Some(p) => self.price(&ty, values, p, usage_gb),
            };
            let (before, after) = (&change["change"]["before"], &change["change"]["after"]);
            let priced = match (creates || updates, deletes || updates) {
                (true, false) => price(after),
                (false, true) => price(before).map(|(m, d)| (-m, format!("destroyed: -({d})"))),
                _ => match (price(after), price(before)) {
                    (Ok((new, d)), Ok((old, _))) => Ok((new - old, format!("{d} (was ${:.2}/month)", round2(old)))),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                },
            };
            match priced {
                Ok((monthly, description)) => {
                    estimate.monthly_total += monthly;
                    estimate.lines.push(CostLine { address, resource_type: ty, description, monthly: round2(monthly) });
                }
                Err(reason) => estimate.unpriced.push(UnpricedResource { address, resource_type: ty, reason }),
            }
        }
        estimate.monthly_total = round2(estimate.monthly_total);
        Ok(estimate)
    }

    fn price(&self, ty: &str, after: &Value, p: &RegionPrices, usage_gb: Option<f64>) -> Result<(f64, String), String> {
        let hours = self.hours_per_month;
        match ty {
            t if self.free_types.iter().any(|f| f == t) => Ok((0.0, "no charge".into())),
            "aws_instance" => {
                let itype = after["instance_type"].as_str().ok_or("instance_type unknown at plan time")?;
                let rate = p.ec2_hourly.get(itype).ok_or_else(|| format!("no price for instance type {itype}"))?;
                let root = &after["root_block_device"][0];
                let (root_gb, root_type) = (root["volume_size"].as_f64().unwrap_or(8.0), root["volume_type"].as_str());
                // Without a type the AMI decides; price the costlier common default.
                let (mut monthly, mut parts) = (rate * hours, vec![format!("{itype} ${rate}/h x {hours}h")]);
                let (cost, part) = volume(p, "root", root_gb, root_type.unwrap_or("gp2"))?;
                monthly += cost;
                parts.push(if root_type.is_some() { part } else { format!("{part} (type decided by the AMI)") });
                for (i, block) in after["ebs_block_device"].as_array().into_iter().flatten().enumerate() {
                    let gb = block["volume_size"]
                        .as_f64()
                        .ok_or(format!("ebs_block_device {i} has no volume_size at plan time"))?;
                    let (cost, part) = volume(
                        p,
                        block["device_name"].as_str().unwrap_or("ebs"),
                        gb,
                        block["volume_type"].as_str().unwrap_or("gp2"),
                    )?;
                    monthly += cost;
                    parts.push(part);
                }
                Ok((monthly, parts.join(" + ")))
            }
            "aws_db_instance" => {
                let class = after["instance_class"].as_str().ok_or("instance_class unknown at plan time")?;
                let engine = after["engine"].as_str().unwrap_or("postgres");
                if engine != "postgres" {
                    return Err(format!("no prices for engine {engine}"));
                }
                let rate =
                    p.rds_postgres_hourly.get(class).ok_or_else(|| format!("no price for instance class {class}"))?;
                let az = if after["multi_az"].as_bool().unwrap_or(false) { 2.0 } else { 1.0 };
                let storage = after["allocated_storage"].as_f64().unwrap_or(20.0);
                // Multi-AZ keeps a standby with its own storage: both double.
                let monthly = (rate * hours + storage * p.rds_gp2_gb_month) * az;
                Ok((
                    monthly,
                    format!("({class} ${rate}/h x {hours}h + {storage} GB gp2 x ${}/GB) x {az} AZ", p.rds_gp2_gb_month),
                ))
            }
            "aws_s3_bucket" => {
                let gb = usage_gb
                    .ok_or("no storage_gb usage assumption (a storage_gb variable, or the module's usage.toml)")?;
                Ok((
                    gb * p.s3_standard_gb_month,
                    format!("{gb} GB Standard x ${}/GB (usage assumption)", p.s3_standard_gb_month),
                ))
            }
            other => Err(format!("no price book entry for {other}")),
        }
    }
}

/// The file beside a module source's `.tf` files that declares usage assumptions.
pub const USAGE_FILE: &str = "usage.toml";

/// Usage a plan cannot show, declared with a module (as Infracost's usage file does): per
/// resource address, e.g. how many GB an S3 bucket will hold. A value is a number or
/// `"var.<name>"` (a variable of the module, so each request's own value is priced).
///
/// ```toml
/// [resource_usage."aws_s3_bucket.logs"]
/// storage_gb = "var.expected_gb"
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default)]
    pub resource_usage: BTreeMap<String, ResourceUsage>,
}

/// What one resource is assumed to use.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceUsage {
    /// GB stored (S3 Standard).
    pub storage_gb: Option<UsageValue>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum UsageValue {
    Number(f64),
    /// `var.<name>`.
    Variable(String),
}

impl Usage {
    /// Reads `usage.toml`; `variables` are the module's, which references must name.
    pub fn parse(text: &str, variables: &[String]) -> Result<Usage, String> {
        let usage: Usage = toml::from_str(text).map_err(|e| format!("{USAGE_FILE}: {}", e.message().trim()))?;
        for (address, r) in &usage.resource_usage {
            match &r.storage_gb {
                Some(UsageValue::Number(n)) if !(n.is_finite() && *n >= 0.0) => {
                    return Err(format!("{USAGE_FILE}: {address}.storage_gb is {n}; give GB, zero or more"));
                }
                Some(UsageValue::Variable(v)) => {
                    let name = v.strip_prefix("var.").unwrap_or_default();
                    if !variables.iter().any(|d| d == name) {
                        return Err(format!(
                            "{USAGE_FILE}: {address}.storage_gb is \"{v}\"; give a number or var.<name> of a variable the module declares ({})",
                            variables.join(", ")
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(usage)
    }

    /// The usage declared for `address` (an indexed address `a.b[0]` matches `a.b` too),
    /// resolved against the plan's variables.
    fn storage_gb(&self, address: &str, plan: &Value) -> Option<f64> {
        let bare = address.split('[').next().unwrap_or(address);
        let r = self.resource_usage.get(address).or_else(|| self.resource_usage.get(bare))?;
        match r.storage_gb.as_ref()? {
            UsageValue::Number(n) => Some(*n),
            UsageValue::Variable(v) => {
                let value = &plan["variables"][v.trim_start_matches("var.")]["value"];
                value.as_f64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            }
        }
    }
}

/// One EBS volume's monthly storage price and its description.
fn volume(p: &RegionPrices, what: &str, gb: f64, volume_type: &str) -> Result<(f64, String), String> {
    let price = p.ebs_gb_month.get(volume_type).ok_or_else(|| format!("no price for EBS volume type {volume_type}"))?;
    Ok((gb * price, format!("{what} {gb} GB {volume_type} x ${price}/GB")))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_proto::catalog;

    fn plan(changes: Vec<Value>) -> Value {
        json!({ "resource_changes": changes, "variables": { "storage_gb": { "value": 100 } } })
    }

    fn create(ty: &str, after: Value) -> Value {
        json!({ "address": format!("{ty}.this"), "type": ty, "change": { "actions": ["create"], "after": after } })
    }

    #[test]
    fn ec2_is_instance_hours_plus_volume() {
        let book = PriceBook::builtin();
        let e = book
            .estimate(
                &plan(vec![
                    create(
                        "aws_instance",
                        json!({ "instance_type": "t3.micro", "root_block_device": [{ "volume_size": 20 }] }),
                    ),
                    create("aws_security_group", json!({})),
                ]),
                "us-east-1",
            )
            .unwrap();
        // 0.0104 * 730 = 7.592 ; 20 GB root whose type the AMI decides, as gp2: 20 * 0.10 = 2.0
        assert_eq!(e.monthly_total, 9.59);
        assert!(
            e.lines[0].description.ends_with("root 20 GB gp2 x $0.1/GB (type decided by the AMI)"),
            "{}",
            e.lines[0].description
        );
        assert_eq!(e.lines.len(), 2);
        assert_eq!(e.lines[1].description, "no charge");
        assert!(e.unpriced.is_empty());
    }

    #[test]
    fn rds_and_s3_use_region_prices() {
        let book = PriceBook::builtin();
        let rds = create(
            "aws_db_instance",
            json!({ "instance_class": "db.r5.2xlarge", "engine": "postgres", "allocated_storage": 100 }),
        );
        let e = book.estimate(&plan(vec![rds.clone()]), "us-east-1").unwrap();
        assert_eq!(e.monthly_total, 741.5); // 1.00*730 + 100*0.115
        let e = book.estimate(&plan(vec![rds]), "eu-west-1").unwrap();
        assert_eq!(e.monthly_total, 830.3); // 1.12*730 + 100*0.127
        let e = book.estimate(&plan(vec![create("aws_s3_bucket", json!({}))]), "us-east-1").unwrap();
        assert_eq!(e.monthly_total, 2.3); // 100 GB * 0.023
    }

    #[test]
    fn volumes_are_priced_by_type_and_multi_az_doubles_storage_too() {
        let book = PriceBook::builtin();
        let ec2 = create(
            "aws_instance",
            json!({
                "instance_type": "t3.micro",
                "root_block_device": [{ "volume_size": 20, "volume_type": "gp3" }],
                "ebs_block_device": [
                    { "device_name": "/dev/sdf", "volume_size": 100, "volume_type": "io1" },
                    { "device_name": "/dev/sdg", "volume_size": 50 },
                ],
            }),
        );
        let e = book.estimate(&plan(vec![ec2]), "us-east-1").unwrap();
        // 7.592 + 20*0.08 + 100*0.125 + 50*0.10 (gp2, the EBS default)
        assert_eq!(e.monthly_total, 26.69);
        assert_eq!(
            e.lines[0].description,
            "t3.micro $0.0104/h x 730h + root 20 GB gp3 x $0.08/GB + /dev/sdf 100 GB io1 x $0.125/GB + /dev/sdg 50 GB gp2 x $0.1/GB"
        );
        let odd = create(
            "aws_instance",
            json!({ "instance_type": "t3.micro", "root_block_device": [{ "volume_size": 8, "volume_type": "gp9" }] }),
        );
        assert_eq!(
            book.estimate(&plan(vec![odd]), "us-east-1").unwrap().unpriced[0].reason,
            "no price for EBS volume type gp9"
        );

        let rds = |multi_az: bool| {
            create(
                "aws_db_instance",
                json!({ "instance_class": "db.t3.micro", "engine": "postgres", "allocated_storage": 100, "multi_az": multi_az }),
            )
        };
        let single = book.estimate(&plan(vec![rds(false)]), "eu-west-1").unwrap().monthly_total;
        let multi = book.estimate(&plan(vec![rds(true)]), "eu-west-1").unwrap().monthly_total;
        assert_eq!(single, 27.3); // 0.020*730 + 100*0.127
        assert_eq!(multi, 54.6, "instance and storage both doubled");
    }

    #[test]
    fn updates_and_destroys_change_the_bill_by_their_difference() {
        let book = PriceBook::builtin();
        let ec2 =
            |t: &str| json!({ "instance_type": t, "root_block_device": [{ "volume_size": 20, "volume_type": "gp3" }] });
        let change = |actions: Value, before: Value, after: Value| {
            json!({ "address": "aws_instance.this", "type": "aws_instance",
                    "change": { "actions": actions, "before": before, "after": after } })
        };
        let resized = change(json!(["update"]), ec2("t3.micro"), ec2("t3.large"));
        let e = book.estimate(&plan(vec![resized]), "us-east-1").unwrap();
        assert_eq!(e.monthly_total, 53.14); // (0.0832 - 0.0104) * 730
        assert!(e.lines[0].description.ends_with("(was $9.19/month)"), "{}", e.lines[0].description);
        let gone = change(json!(["delete"]), ec2("t3.micro"), Value::Null);
        let e = book.estimate(&plan(vec![gone]), "us-east-1").unwrap();
        assert_eq!(e.monthly_total, -9.19);
        assert!(e.lines[0].description.starts_with("destroyed: -(t3.micro"), "{}", e.lines[0].description);
        let replaced = change(json!(["delete", "create"]), ec2("t3.micro"), ec2("t3.small"));
        assert_eq!(book.estimate(&plan(vec![replaced]), "us-east-1").unwrap().monthly_total, 7.59);
        let same = change(json!(["no-op"]), ec2("t3.micro"), ec2("t3.micro"));
        assert!(book.estimate(&plan(vec![same]), "us-east-1").unwrap().lines.is_empty());
    }

    #[test]
    fn eu_west_1_rds_postgres_matches_public_prices() {
        let p = &PriceBook::builtin().regions["eu-west-1"].rds_postgres_hourly;
        let public = [
            ("db.t3.micro", 0.020),
            ("db.t3.small", 0.039),
            ("db.t3.medium", 0.078),
            ("db.m5.large", 0.197),
            ("db.m5.xlarge", 0.394),
            ("db.r5.large", 0.28),
            ("db.r5.2xlarge", 1.12),
        ];
        for (class, price) in public {
            assert_eq!(p[class], price, "{class}");
        }
    }

    #[test]
    fn unknown_things_are_unpriced_not_free() {
        let book = PriceBook::builtin();
        let e = book
            .estimate(
                &plan(vec![
                    create("aws_lambda_function", json!({})),
                    create("aws_instance", json!({ "instance_type": "p4d.24xlarge" })),
                ]),
                "us-east-1",
            )
            .unwrap();
        assert_eq!(e.monthly_total, 0.0);
        assert_eq!(e.unpriced.len(), 2);
        assert_eq!(e.unpriced[0].reason, "no price book entry for aws_lambda_function");
        assert_eq!(e.unpriced[1].reason, "no price for instance type p4d.24xlarge");
        let e = book.estimate(&plan(vec![create("aws_s3_bucket", json!({}))]), "ap-south-1").unwrap();
        assert_eq!(e.unpriced[0].reason, "no prices for region ap-south-1");
    }

    #[test]
    fn the_book_covers_every_catalog_choice_in_every_region() {
        let book = PriceBook::builtin();
        for region in catalog::REGIONS {
            let p = &book.regions[*region];
            for t in catalog::EC2_INSTANCE_TYPES {
                assert!(p.ec2_hourly.contains_key(*t), "{region} lacks {t}");
            }
            for c in catalog::RDS_INSTANCE_CLASSES {
                assert!(p.rds_postgres_hourly.contains_key(*c), "{region} lacks {c}");
            }
        }
    }

    #[test]
    fn a_bad_price_book_names_the_file() {
        let err = PriceBook::parse("version = 3", "/etc/tollgate/prices.toml").unwrap_err();
        assert!(err.to_string().starts_with("price book /etc/tollgate/prices.toml:"), "{err}");
    }
}
