//! Builds or refreshes the price book from AWS's public Price List offer files (the bulk JSON
//! format: `products` by SKU with `attributes`, `terms.OnDemand` by SKU with
//! `priceDimensions[].pricePerUnit.USD` as decimal strings), so nobody types prices by hand.
//! Reads what the price book holds: EC2 Linux shared-tenancy on-demand hours and EBS storage
//! by volume type (AmazonEC2), RDS PostgreSQL Single-AZ hours and gp2 storage (AmazonRDS),
//! S3 Standard storage's first tier (AmazonS3).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{PriceBook, RegionPrices};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {message}")]
    BadOffer { file: String, message: String },
}

/// What an import changed, for the operator to review.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    /// `(region, item, old, new)` for every price set; old is None when it was new.
    pub changes: Vec<(String, String, Option<f64>, f64)>,
    pub offers: Vec<String>,
}

/// Applies offer files (name, JSON text) to `book` (a new version is the caller's to set).
pub fn import(book: &mut PriceBook, offers: &[(String, String)]) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    for (file, text) in offers {
        let bad = |message: String| ImportError::BadOffer { file: file.clone(), message };
        let offer: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let code =
            offer["offerCode"].as_str().ok_or_else(|| bad("no offerCode: not an AWS Price List offer file".into()))?;
        let products = offer["products"].as_object().ok_or_else(|| bad("no products".into()))?;
        let terms = offer["terms"]["OnDemand"].as_object().ok_or_else(|| bad("no terms.OnDemand".into()))?;
        report.offers.push(format!("{code} {}", offer["version"].as_str().unwrap_or("?")));
        for (sku, product) in products {
            let a = &product["attributes"];
            let Some(region) = a["regionCode"].as_str() else { continue };
            let Some((item, unit)) = item_of(code, product["productFamily"].as_str().unwrap_or_default(), a) else {
                continue;
            };
            let Some(price) = on_demand_price(terms.get(sku), unit) else { continue };
            let prices = book.regions.entry(region.to_string()).or_insert_with(empty_region);
            let old = set(prices, &item, price);
            if old != Some(price) {
                report.changes.push((region.to_string(), item.label(), old, price));
            }
        }
    }
    report.changes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    Ok(report)
}

/// A price the book holds.
enum Item {
    Ec2(String),
    Ebs(String),
    Rds(String),
    RdsGp2,
    S3Standard,
}

impl Item {
    fn label(&self) -> String {
        match self {
            Item::Ec2(t) => format!("ec2 {t} $/h"),
            Item::Ebs(t) => format!("ebs {t} $/GB-month"),
            Item::Rds(c) => format!("rds postgres {c} $/h"),
            Item::RdsGp2 => "rds gp2 $/GB-month".into(),
            Item::S3Standard => "s3 standard $/GB-month".into(),
        }
    }
}

/// Which price book item a product is (and the unit its price must be in), if any.
fn item_of(code: &str, family: &str, a: &Value) -> Option<(Item, &'static str)> {
    let attr = |k: &str| a[k].as_str().unwrap_or_default();
    match (code, family) {
        ("AmazonEC2", "Compute Instance")
            if attr("operatingSystem") == "Linux"
                && attr("tenancy") == "Shared"
                && attr("preInstalledSw") == "NA"
                && attr("capacitystatus") == "Used"
                && attr("licenseModel") != "Bring your own license" =>
        {
            Some((Item::Ec2(attr("instanceType").to_string()), "Hrs"))
        }
        ("AmazonEC2", "Storage") if !attr("volumeApiName").is_empty() => {
            Some((Item::Ebs(attr("volumeApiName").to_string()), "GB-Mo"))
        }
        ("AmazonRDS", "Database Instance")
            if attr("databaseEngine") == "PostgreSQL" && attr("deploymentOption") == "Single-AZ" =>
        {
            Some((Item::Rds(attr("instanceType").to_string()), "Hrs"))
        }
        ("AmazonRDS", "Database Storage")
            if attr("volumeType") == "General Purpose"
                && attr("deploymentOption") == "Single-AZ"
                && matches!(attr("databaseEngine"), "PostgreSQL" | "Any" | "") =>
        {
            Some((Item::RdsGp2, "GB-Mo"))
        }
        ("AmazonS3", "Storage") if attr("volumeType") == "Standard" => Some((Item::S3Standard, "GB-Mo")),
        _ => None,
    }
}

/// The on-demand price of a SKU in `unit`: its first tier (beginRange 0).
fn on_demand_price(terms: Option<&Value>, unit: &str) -> Option<f64> {
    let dimensions = terms?.as_object()?.values().flat_map(|t| t["priceDimensions"].as_object().into_iter().flatten());
    dimensions
        .map(|(_, d)| d)
        .filter(|d| d["unit"].as_str() == Some(unit) && d["beginRange"].as_str().unwrap_or("0") == "0")
        // Prices are decimal strings; parse them as written.
        .find_map(|d| d["pricePerUnit"]["USD"].as_str().and_then(|p| p.trim().parse::<f64>().ok()))
        .filter(|p| *p > 0.0)
}

fn set(p: &mut RegionPrices, item: &Item, price: f64) -> Option<f64> {
    match item {
        Item::Ec2(t) => p.ec2_hourly.insert(t.clone(), price),
        Item::Ebs(t) => p.ebs_gb_month.insert(t.clone(), price),
        Item::Rds(c) => p.rds_postgres_hourly.insert(c.clone(), price),
        Item::RdsGp2 => Some(std::mem::replace(&mut p.rds_gp2_gb_month, price)).filter(|o| *o > 0.0),
        Item::S3Standard => Some(std::mem::replace(&mut p.s3_standard_gb_month, price)).filter(|o| *o > 0.0),
    }
}

fn empty_region() -> RegionPrices {
    RegionPrices {
        ebs_gb_month: BTreeMap::new(),
        rds_gp2_gb_month: 0.0,
        s3_standard_gb_month: 0.0,
        ec2_hourly: BTreeMap::new(),
        rds_postgres_hourly: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offers() -> Vec<(String, String)> {
        ["AmazonEC2", "AmazonRDS", "AmazonS3"]
            .iter()
            .map(|o| {
                let path = format!("{}/../tests/fixtures/offers/{o}.json", env!("CARGO_MANIFEST_DIR"));
                (format!("{o}.json"), std::fs::read_to_string(path).unwrap())
            })
            .collect()
    }

    #[test]
    fn offer_files_refresh_exactly_the_prices_the_book_holds() {
        let mut book = PriceBook::builtin();
        let report = import(&mut book, &offers()).unwrap();
        assert_eq!(
            report.offers,
            vec!["AmazonEC2 20261101000000", "AmazonRDS 20261101000000", "AmazonS3 20261101000000"]
        );
        // Linux shared on-demand only: not the Windows SKU, not the reserved term.
        assert_eq!(book.regions["us-east-1"].ec2_hourly["t3.micro"], 0.0105);
        assert_eq!(book.regions["eu-west-1"].ec2_hourly["c7g.large"], 0.0812, "new types are added");
        assert_eq!(book.regions["us-east-1"].ebs_gb_month["gp3"], 0.08);
        // PostgreSQL Single-AZ only: not Multi-AZ, not MySQL.
        assert_eq!(book.regions["eu-west-1"].rds_postgres_hourly["db.t3.micro"], 0.02);
        assert_eq!(book.regions["eu-west-1"].rds_gp2_gb_month, 0.127);
        // S3: the first tier.
        assert_eq!(book.regions["us-east-1"].s3_standard_gb_month, 0.023);
        assert_eq!(
            report.changes,
            vec![
                ("eu-west-1".to_string(), "ec2 c7g.large $/h".to_string(), None, 0.0812),
                ("us-east-1".to_string(), "ec2 t3.micro $/h".to_string(), Some(0.0104), 0.0105),
            ],
            "only what changed is reported"
        );
        // The refreshed book is written and read back as the same book.
        let again = PriceBook::parse(&book.to_toml(), "written").unwrap();
        assert_eq!(again.regions["eu-west-1"].ec2_hourly["c7g.large"], 0.0812);
        assert_eq!(again.version, book.version);
    }

    #[test]
    fn a_file_that_is_not_an_offer_says_so() {
        let mut book = PriceBook::builtin();
        let err = import(&mut book, &[("prices.json".into(), "{\"products\": {}}".into())]).unwrap_err();
        assert_eq!(err.to_string(), "prices.json: no offerCode: not an AWS Price List offer file");
        let err = import(&mut book, &[("x.json".into(), "nope".into())]).unwrap_err();
        assert!(err.to_string().starts_with("x.json: not JSON"), "{err}");
    }
}
