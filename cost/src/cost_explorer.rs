//! The `aws-cost-explorer` baseline: the average unblended cost of the last three full months
//! from AWS Cost Explorer's GetCostAndUsage (optionally only resources with one tag value,
//! e.g. team=data), cached for a while (each call is billed by AWS). Requests are signed
//! with Signature Version 4 here: one POST does not warrant an AWS SDK.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::hmac;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use tollgate_config::CostExplorerConfig;

/// AWS credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// From AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
    pub fn from_env() -> Option<Self> {
        Some(Self {
            access_key_id: std::env::var("AWS_ACCESS_KEY_ID").ok().filter(|v| !v.is_empty())?,
            secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY").ok().filter(|v| !v.is_empty())?,
            session_token: std::env::var("AWS_SESSION_TOKEN").ok().filter(|v| !v.is_empty()),
        })
    }
}

pub struct CostExplorer {
    config: CostExplorerConfig,
    credentials: Credentials,
    http: reqwest::Client,
    cached: Mutex<Option<(Instant, f64, String)>>,
}

/// The first days of the three full months before `today` ("2026-08-01", ..., "2026-11-01"
/// for a day in November): the period is [first, last).
pub fn last_three_months(year: i32, month: u32) -> (String, String) {
    let back = |n: i32| {
        let m = (year * 12 + month as i32 - 1) - n;
        format!("{:04}-{:02}-01", m.div_euclid(12), m.rem_euclid(12) + 1)
    };
    (back(3), back(0))
}

/// Signature Version 4 over one request: returns the headers to send (Authorization,
/// X-Amz-Date, and the security token when there is one). `headers` are the other headers
/// that are signed, lower-case names; `query` is already canonical.
#[allow(clippy::too_many_arguments)]
pub fn sign_v4(
    credentials: &Credentials,
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    let date = &amz_date[..8];
    let mut signed: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_lowercase(), v.trim().to_string())).collect();
    signed.push(("host".into(), host.into()));
    signed.push(("x-amz-date".into(), amz_date.into()));
    if let Some(token) = &credentials.session_token {
        signed.push(("x-amz-security-token".into(), token.clone()));
    }
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical = format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{}",
        hex::encode(Sha256::digest(payload))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
    let mac = |key: &[u8], data: &str| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes());
    let k_date = mac(format!("AWS4{}", credentials.secret_access_key).as_bytes(), date);
    let k_region = mac(k_date.as_ref(), region);
    let k_service = mac(k_region.as_ref(), service);
    let k_signing = mac(k_service.as_ref(), "aws4_request");
    let signature = hex::encode(mac(k_signing.as_ref(), &to_sign).as_ref());
    let mut out = vec![
        (
            "Authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                credentials.access_key_id
            ),
        ),
        ("X-Amz-Date".to_string(), amz_date.to_string()),
    ];
    if let Some(token) = &credentials.session_token {
        out.push(("X-Amz-Security-Token".to_string(), token.clone()));
    }
    out
}

/// The average of the months' `Total.UnblendedCost.Amount` (decimal strings).
pub fn average_unblended(response: &Value) -> Result<(f64, usize), String> {
    let months = response["ResultsByTime"].as_array().ok_or("the answer has no ResultsByTime")?;
    if months.is_empty() {
        return Err("Cost Explorer returned no months".into());
    }
    let mut sum = Decimal::ZERO;
    for m in months {
        let amount = m["Total"]["UnblendedCost"]["Amount"].as_str().ok_or_else(|| {
            format!("month {} has no Total.UnblendedCost.Amount", m["TimePeriod"]["Start"].as_str().unwrap_or("?"))
        })?;
        sum += Decimal::from_str(amount).map_err(|e| format!("amount '{amount}' is not a decimal: {e}"))?;
    }
    let average = sum / Decimal::from(months.len() as u64);
    Ok((average.round_dp(2).to_f64().unwrap_or_default(), months.len()))
}

/// Why Cost Explorer gave no baseline; the transport's and the parser's errors are kept as
/// the cause.
#[derive(Debug, thiserror::Error)]
pub enum CostExplorerError {
    #[error("cost_explorer.endpoint is not a URL")]
    Endpoint(#[source] url::ParseError),
    #[error("Cost Explorer could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("Cost Explorer answered {status}: {body}")]
    Refused { status: reqwest::StatusCode, body: String },
    #[error("Cost Explorer's answer is not JSON")]
    NotJson(#[source] serde_json::Error),
    #[error("Cost Explorer's answer: {0}")]
    Unexpected(String),
}

/// Throttling, outages and bad credentials alike retry with backoff; the failure (after the
/// retries) names the cause.
impl tollgate_proto::failure::Classified for CostExplorerError {
    fn retryable(&self) -> bool {
        true
    }

    fn type_name(&self) -> tollgate_proto::failure::FailureType {
        tollgate_proto::failure::FailureType::CostExplorerUnavailable
    }
}

impl CostExplorer {
    pub fn new(config: CostExplorerConfig, credentials: Credentials) -> Self {
        // reqwest is built without a default TLS provider; whoever builds a client first installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { config, credentials, http, cached: Mutex::new(None) }
    }

    /// The baseline and its source text, from the cache when it is fresh.
    pub async fn baseline(&self) -> Result<(f64, String), CostExplorerError> {
        if let Ok(guard) = self.cached.lock()
            && let Some((at, value, source)) = guard.as_ref()
            && at.elapsed() < self.config.cache
        {
            return Ok((*value, source.clone()));
        }
        let stamp = tollgate_proto::fmt_time_ms(now_ms()); // 2026-11-21T22:15:00Z
        let (year, month) = (stamp[..4].parse().unwrap_or(1970), stamp[5..7].parse().unwrap_or(1));
        let (start, end) = last_three_months(year, month);
        let mut body = json!({
            "TimePeriod": { "Start": start, "End": end },
            "Granularity": "MONTHLY",
            "Metrics": ["UnblendedCost"],
        });
        if let Some((key, value)) = &self.config.tag {
            body["Filter"] = json!({ "Tags": { "Key": key, "Values": [value] } });
        }
        let answer = self.get_cost_and_usage(&body).await?;
        let (average, months) = average_unblended(&answer).map_err(CostExplorerError::Unexpected)?;
        let tag = match &self.config.tag {
            Some((k, v)) => format!(", tag {k}={v}"),
            None => String::new(),
        };
        let source = format!(
            "aws-cost-explorer: average unblended cost of {months} months from {start} to {end} (exclusive){tag}"
        );
        if let Ok(mut guard) = self.cached.lock() {
            *guard = Some((Instant::now(), average, source.clone()));
        }
        Ok((average, source))
    }

    /// What each of `request_ids` was billed over the last `ACTUALS_DAYS` full days (UTC), by
    /// the `RequestId` tag every Tollgate resource carries and by service: one call, paged.
    /// A request with nothing tagged in the window is not in the answer.
    pub async fn bills(&self, request_ids: &[String]) -> Result<(Window, BTreeMap<String, Billed>), CostExplorerError> {
        let window = Window::before_day(now_ms().div_euclid(DAY_MS), ACTUALS_DAYS);
        if request_ids.is_empty() {
            return Ok((window, BTreeMap::new()));
        }
        let mut body = json!({
            "TimePeriod": { "Start": window.start(), "End": window.end() },
            "Granularity": "DAILY",
            "Metrics": ["UnblendedCost"],
            "GroupBy": [{ "Type": "TAG", "Key": REQUEST_TAG }, { "Type": "DIMENSION", "Key": "SERVICE" }],
            "Filter": { "Tags": { "Key": REQUEST_TAG, "Values": request_ids, "MatchOptions": ["EQUALS"] } },
        });
        let mut pages = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.get_cost_and_usage(&body).await?;
            let next = page["NextPageToken"].as_str().filter(|t| !t.is_empty()).map(String::from);
            pages.push(page);
            match next {
                Some(token) => body["NextPageToken"] = json!(token),
                None => break,
            }
        }
        let bills = bills_by_request(&pages, &window).map_err(CostExplorerError::Unexpected)?;
        Ok((window, bills))
    }

    /// One signed GetCostAndUsage call.
    async fn get_cost_and_usage(&self, body: &Value) -> Result<Value, CostExplorerError> {
        let payload = body.to_string();
        let url = url::Url::parse(&self.config.endpoint).map_err(CostExplorerError::Endpoint)?;
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let amz_date: String =
            tollgate_proto::fmt_time_ms(now_ms()).chars().filter(|c| *c != '-' && *c != ':').collect();
        let target = "AWSInsightsIndexService.GetCostAndUsage";
        let content_type = "application/x-amz-json-1.1";
        let auth = sign_v4(
            &self.credentials,
            "POST",
            &host,
            "/",
            "",
            &[("content-type", content_type), ("x-amz-target", target)],
            payload.as_bytes(),
            &self.config.region,
            "ce",
            &amz_date,
        );
        let mut request =
            self.http.post(url).header("Content-Type", content_type).header("X-Amz-Target", target).body(payload);
        for (k, v) in auth {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(CostExplorerError::Unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(CostExplorerError::Unreachable)?;
        if !status.is_success() {
            return Err(CostExplorerError::Refused { status, body: refusal(&text) });
        }
        serde_json::from_str(&text).map_err(CostExplorerError::NotJson)
    }
}

/// AWS's error in one line ("AccessDeniedException: User ... is not authorized"), or the
/// start of whatever else answered, its whitespace folded.
fn refusal(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let kind = v["__type"].as_str().map(|t| t.rsplit('#').next().unwrap_or(t));
        let message = v["message"].as_str().or(v["Message"].as_str());
        match (kind, message) {
            (Some(k), Some(m)) => return format!("{k}: {m}"),
            (Some(k), None) => return k.to_string(),
            (None, Some(m)) => return m.to_string(),
            (None, None) => {}
        }
    }
    let folded = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = folded.chars().take(200).collect();
    if short.len() < folded.len() {
        short.push_str("...");
    }
    short
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

const DAY_MS: i64 = 86_400_000;

/// The tag Tollgate puts on every resource it makes (the catalog's and modules' `var.tags`).
pub const REQUEST_TAG: &str = "RequestId";

/// How many full days of bills a check reads.
pub const ACTUALS_DAYS: usize = 7;

/// Pages of one answer read at most (a page holds thousands of groups).
const MAX_PAGES: usize = 20;

/// Hours in the month a rate is stated for, as the price book prices by the hour.
const HOURS_PER_MONTH: u32 = 730;

/// Full UTC days read, oldest first ("2026-11-30", ..., "2026-12-06"), and the day after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: Vec<String>,
    end: String,
}

impl Window {
    /// The `n` full days before day number `today` (days since 1970-01-01).
    pub fn before_day(today: i64, n: usize) -> Self {
        let day = |d: i64| tollgate_proto::fmt_time_ms(d * DAY_MS)[..10].to_string();
        Self { days: (1..=n as i64).rev().map(|back| day(today - back)).collect(), end: day(today) }
    }

    pub fn start(&self) -> &str {
        &self.days[0]
    }

    /// The last day read.
    pub fn last(&self) -> &str {
        &self.days[self.days.len() - 1]
    }

    /// Exclusive, as Cost Explorer's periods are.
    pub fn end(&self) -> &str {
        &self.end
    }
}

/// One request's bill as Cost Explorer has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Billed {
    /// Billed over `days` full days: each service's cost as a monthly rate (730 hours).
    Measured { days: usize, from: String, monthly_by_service: BTreeMap<String, f64> },
    /// First billed on `first_day`, the window's last: no full day yet.
    TooNew { first_day: String },
}

/// Each request's bill from the pages of a DAILY answer grouped by (RequestId tag, SERVICE).
/// The day a request was first billed is partial unless it is the window's first (it was
/// there before), so it is left out; days after it without rows cost nothing.
pub fn bills_by_request(pages: &[Value], window: &Window) -> Result<BTreeMap<String, Billed>, String> {
    // request -> day index -> service -> cost
    let mut seen: BTreeMap<String, BTreeMap<usize, BTreeMap<String, Decimal>>> = BTreeMap::new();
    for page in pages {
        let days = page["ResultsByTime"].as_array().ok_or("the answer has no ResultsByTime")?;
        for day in days {
            let start = day["TimePeriod"]["Start"].as_str().ok_or("a day has no TimePeriod.Start")?;
            let Some(index) = window.days.iter().position(|d| d == start) else { continue };
            for group in day["Groups"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let keys: Vec<&str> =
                    group["Keys"].as_array().map(|k| k.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                let [tag, service] = keys[..] else {
                    return Err(format!("a group of {start} has keys {:?}, not [tag, service]", keys));
                };
                // Tag keys come back as "RequestId$req-1"; "RequestId$" is the untagged rest.
                let id = tag.split_once('$').map(|(_, v)| v).unwrap_or(tag);
                if id.is_empty() {
                    continue;
                }
                let amount = group["Metrics"]["UnblendedCost"]["Amount"]
                    .as_str()
                    .ok_or_else(|| format!("the group {tag} / {service} of {start} has no UnblendedCost.Amount"))?;
                let amount =
                    Decimal::from_str(amount).map_err(|e| format!("amount '{amount}' is not a decimal: {e}"))?;
                *seen.entry(id.into()).or_default().entry(index).or_default().entry(service.into()).or_default() +=
                    amount;
            }
        }
    }
    let n = window.days.len();
    Ok(seen
        .into_iter()
        .map(|(id, by_day)| {
            let first = by_day.keys().next().copied().unwrap_or(0);
            let from = if first == 0 { 0 } else { first + 1 };
            if from >= n {
                return (id, Billed::TooNew { first_day: window.days[first].clone() });
            }
            let days = n - from;
            let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
            for (_, services) in by_day.range(from..) {
                for (service, amount) in services {
                    *totals.entry(service.clone()).or_default() += amount;
                }
            }
            let monthly_by_service = totals
                .into_iter()
                .map(|(s, sum)| {
                    let rate = sum * Decimal::from(HOURS_PER_MONTH) / Decimal::from(24 * days as u64);
                    (s, rate.round_dp(2).to_f64().unwrap_or_default())
                })
                .collect();
            (id, Billed::Measured { days, from: window.days[from].clone(), monthly_by_service })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Cost Explorer nobody answers: the error says so and keeps the transport's cause.
    #[tokio::test]
    async fn an_unreachable_endpoint_keeps_its_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let config = CostExplorerConfig {
            endpoint: format!("http://{closed}"),
            region: "us-east-1".into(),
            tag: None,
            cache: Duration::from_secs(60),
        };
        let credentials =
            || Credentials { access_key_id: "A".into(), secret_access_key: "S".into(), session_token: None };
        let bad = CostExplorerConfig { endpoint: "not a url".into(), ..config.clone() };
        let err = CostExplorer::new(config, credentials()).baseline().await.unwrap_err();
        assert!(matches!(err, CostExplorerError::Unreachable(_)), "{err:?}");
        let cause = std::error::Error::source(&err).map(|c| c.to_string()).unwrap_or_default();
        assert!(cause.contains("error sending request"), "the cause is kept: {cause}");
        let err = CostExplorer::new(bad, credentials()).baseline().await.unwrap_err();
        assert!(matches!(err, CostExplorerError::Endpoint(_)), "{err:?}");
    }

    /// AWS's published Signature Version 4 example (IAM ListUsers, 2015-08-30).
    #[test]
    fn signatures_match_the_aws_example() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let headers = sign_v4(
            &credentials,
            "GET",
            "iam.amazonaws.com",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            b"",
            "us-east-1",
            "iam",
            "20150830T123600Z",
        );
        assert_eq!(
            headers[0].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn the_period_is_the_last_three_full_months() {
        assert_eq!(last_three_months(2026, 11), ("2026-08-01".into(), "2026-11-01".into()));
        assert_eq!(last_three_months(2026, 2), ("2025-11-01".into(), "2026-02-01".into()));
    }

    #[test]
    fn the_average_is_taken_in_decimals() {
        let answer = json!({"ResultsByTime": [
            {"TimePeriod": {"Start": "2026-08-01"}, "Total": {"UnblendedCost": {"Amount": "1000.10", "Unit": "USD"}}},
            {"TimePeriod": {"Start": "2026-09-01"}, "Total": {"UnblendedCost": {"Amount": "1200.20", "Unit": "USD"}}},
            {"TimePeriod": {"Start": "2026-10-01"}, "Total": {"UnblendedCost": {"Amount": "1400.30", "Unit": "USD"}}},
        ]});
        assert_eq!(average_unblended(&answer).unwrap(), (1200.2, 3));
        assert!(average_unblended(&json!({"ResultsByTime": []})).unwrap_err().contains("no months"));
        let bad = json!({"ResultsByTime": [{"TimePeriod": {"Start": "2026-08-01"}, "Total": {}}]});
        assert_eq!(average_unblended(&bad).unwrap_err(), "month 2026-08-01 has no Total.UnblendedCost.Amount");
    }

    fn group(id: &str, service: &str, amount: &str) -> Value {
        json!({"Keys": [format!("RequestId${id}"), service], "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}})
    }

    /// Seven days before 2026-12-07 (day 20794): a request there all week, one that came up
    /// mid-week (its first day is partial), one only yesterday, untagged costs, and one unknown.
    #[test]
    fn bills_are_monthly_rates_over_full_days() {
        let window = Window::before_day(20794, 7);
        assert_eq!((window.start(), window.end()), ("2026-11-30", "2026-12-07"));
        assert_eq!(window.days[6], "2026-12-06");
        let day =
            |d: &str, groups: Vec<Value>| json!({"TimePeriod": {"Start": d}, "Groups": groups, "Estimated": true});
        let mut days: Vec<Value> = window
            .days
            .iter()
            .map(|d| day(d, vec![
                group("old", "Amazon Simple Storage Service", "0.24"),
                group("old", "AWS Key Management Service", "0.03"),
                json!({"Keys": ["RequestId$", "Amazon Simple Storage Service"], "Metrics": {"UnblendedCost": {"Amount": "9.99"}}}),
            ]))
            .collect();
        for (i, d) in days.iter_mut().enumerate().skip(3) {
            let amount = if i == 3 { "0.10" } else { "1.20" };
            d["Groups"].as_array_mut().unwrap().push(group("mid", "Amazon Elastic Compute Cloud - Compute", amount));
        }
        days[6]["Groups"].as_array_mut().unwrap().push(group("new", "Amazon Simple Storage Service", "0.01"));
        // Two pages: the answer is read across them.
        let pages = vec![json!({"ResultsByTime": days[..4]}), json!({"ResultsByTime": days[4..]})];
        let bills = bills_by_request(&pages, &window).unwrap();
        assert_eq!(
            bills["old"],
            Billed::Measured {
                days: 7,
                from: "2026-11-30".into(),
                // 0.24 a day is 7.30 a 730-hour month; 0.03 a day is 0.9125
                monthly_by_service: BTreeMap::from([
                    ("AWS Key Management Service".into(), 0.91),
                    ("Amazon Simple Storage Service".into(), 7.3),
                ]),
            }
        );
        assert_eq!(
            bills["mid"],
            Billed::Measured {
                days: 3,
                from: "2026-12-04".into(),
                monthly_by_service: BTreeMap::from([("Amazon Elastic Compute Cloud - Compute".into(), 36.5)]),
            },
            "the first, partial day (0.10) is left out: 3.60 over 3 days"
        );
        assert_eq!(bills["new"], Billed::TooNew { first_day: "2026-12-06".into() });
        assert_eq!(bills.len(), 3, "the untagged rest is nobody's: {bills:?}");

        let bad = vec![
            json!({"ResultsByTime": [{"TimePeriod": {"Start": "2026-12-01"}, "Groups": [{"Keys": ["RequestId$x"]}]}]}),
        ];
        assert!(bills_by_request(&bad, &window).unwrap_err().contains("not [tag, service]"));
        assert_eq!(bills_by_request(&[json!({})], &window).unwrap_err(), "the answer has no ResultsByTime");
    }

    #[test]
    fn refusals_read_in_one_line() {
        let aws = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:iam::1:user/t is not authorized to perform: ce:GetCostAndUsage"}"#;
        assert_eq!(
            refusal(aws),
            "AccessDeniedException: User: arn:aws:iam::1:user/t is not authorized to perform: ce:GetCostAndUsage"
        );
        assert_eq!(refusal("<html>\n  <p>Error code: 501</p>\n</html>"), "<html> <p>Error code: 501</p> </html>");
        assert!(refusal(&"x ".repeat(300)).ends_with("..."));
    }
}
