//! Prices a Terraform plan with the price book. Anything it cannot price is listed as
//! unpriced with the reason, never counted as $0.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tollgate_proto::{CostEstimate, CostLine, UnpricedResource};

/// The price book shipped with Tollgate.
pub const DEFAULT_PRICE_BOOK: &str = include_str!("../data/price_book.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct PriceBook {
    pub version: String,
    pub currency: String,
    pub hours_per_month: f64,
    pub free_types: Vec<String>,
    pub assumptions: Vec<String>,
    pub regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegionPrices {
    pub ebs_gp3_gb_month: f64,
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

impl CostError {
    pub fn retryable(&self) -> bool {
        match self {
            CostError::BadPriceBook { .. } | CostError::BadPlan => false,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            CostError::BadPriceBook { .. } => "BadPriceBook",
            CostError::BadPlan => "InvalidModule",
        }
    }
}

impl PriceBook {
    /// Parses a price book; `path` only labels errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, CostError> {
        toml::from_str(text).map_err(|e| CostError::BadPriceBook { path: path.into(), message: e.to_string() })
    }

    pub fn builtin() -> Self {
        Self::parse(DEFAULT_PRICE_BOOK, "builtin price_book.toml").expect("the shipped price book parses")
    }

    /// Estimates the monthly cost of everything the plan creates.
    pub fn estimate(&self, plan: &Value, region: &str) -> Result<CostEstimate, CostError> {
        let changes = plan["resource_changes"].as_array().ok_or(CostError::BadPlan)?;
        let mut estimate = CostEstimate {
            currency: self.currency.clone(),
            assumptions: self.assumptions.clone(),
            price_book_version: self.version.clone(),
            ..Default::default()
        };
        let prices = self.regions.get(region);
        let usage_gb = plan["variables"]["storage_gb"]["value"].as_f64();
        for change in changes {
            let actions: Vec<&str> =
                change["change"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if !actions.contains(&"create") {
                continue; // no-op, update or delete: no new monthly cost
            }
            let address = change["address"].as_str().unwrap_or_default().to_string();
            let ty = change["type"].as_str().unwrap_or_default().to_string();
            let after = &change["change"]["after"];
            let priced = match prices {
                None => Err(format!("no prices for region {region}")),
                Some(p) => self.price(&ty, after, p, usage_gb),
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
                let disk = after["root_block_device"][0]["volume_size"].as_f64().unwrap_or(8.0);
                let monthly = rate * hours + disk * p.ebs_gp3_gb_month;
                Ok((monthly, format!("{itype} ${rate}/h x {hours}h + {disk} GB gp3 x ${}/GB", p.ebs_gp3_gb_month)))
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
                let monthly = rate * hours * az + storage * p.rds_gp2_gb_month;
                Ok((
                    monthly,
                    format!("{class} ${rate}/h x {hours}h x {az} AZ + {storage} GB gp2 x ${}/GB", p.rds_gp2_gb_month),
                ))
            }
            "aws_s3_bucket" => {
                let gb = usage_gb.ok_or("no storage_gb usage assumption in the plan")?;
                Ok((
                    gb * p.s3_standard_gb_month,
                    format!("{gb} GB Standard x ${}/GB (usage assumption)", p.s3_standard_gb_month),
                ))
            }
            other => Err(format!("no price book entry for {other}")),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_workflows::catalog;

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
        // 0.0104 * 730 = 7.592 ; 20 * 0.08 = 1.6
        assert_eq!(e.monthly_total, 9.19);
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
        assert_eq!(e.monthly_total, 815.7); // 1.10*730 + 100*0.127
        let e = book.estimate(&plan(vec![create("aws_s3_bucket", json!({}))]), "us-east-1").unwrap();
        assert_eq!(e.monthly_total, 2.3); // 100 GB * 0.023
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
