//! A team's budget headroom: what its live requests have committed (each one's monthly cost
//! prorated over the time it has left) plus what this request would cost over its lifetime,
//! against the team's monthly budget. Pure arithmetic; `TeamLedgerWorkflow` (`ledger.rs`)
//! keeps the reservations consistent under concurrent requests and several workers.

/// The length of the month budgets are written in (30 days), in ms.
pub const MONTH_MS: i64 = 30 * 86_400_000;

/// One live request's claim on the headroom: its monthly cost until it expires.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub request_id: String,
    pub monthly_cost: f64,
    pub until_ms: i64,
}

/// The arithmetic of one judgement, shown to people as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Headroom {
    /// What the live requests still commit, prorated over the time each has left.
    pub live: f64,
    pub live_requests: usize,
    /// This request's cost over its lifetime.
    pub this_request: f64,
    pub budget_monthly: f64,
    /// What is left once this request is counted (negative: over).
    pub left: f64,
}

impl Headroom {
    pub fn admitted(&self) -> bool {
        self.left >= 0.0
    }

    /// `live $120.00 (3 requests) + this $100.00 = $220.00 of $500.00/month: $280.00 left`.
    pub fn describe(&self, team: &str) -> String {
        let total = self.live + self.this_request;
        let plural = if self.live_requests == 1 { "" } else { "s" };
        let verdict =
            if self.admitted() { format!("${:.2} left", self.left) } else { format!("${:.2} over", -self.left) };
        format!(
            "team {team}: live ${:.2} ({} request{plural}) + this ${:.2} = ${total:.2} of ${:.2}/month: {verdict}",
            self.live, self.live_requests, self.this_request, self.budget_monthly
        )
    }
}

/// `cost` (per month) over `ms`.
pub fn prorated(monthly_cost: f64, ms: i64) -> f64 {
    monthly_cost * ms.max(0) as f64 / MONTH_MS as f64
}

/// Judges a request costing `monthly_cost` for `ttl_ms` against the team's live reservations
/// at `now_ms` (expired ones count nothing; the request itself, if already reserved, once).
pub fn judge(
    reservations: &[Reservation],
    now_ms: i64,
    budget_monthly: f64,
    request_id: &str,
    monthly_cost: f64,
    ttl_ms: i64,
) -> Headroom {
    let live: Vec<&Reservation> =
        reservations.iter().filter(|r| r.until_ms > now_ms && r.request_id != request_id).collect();
    let committed = round(live.iter().map(|r| prorated(r.monthly_cost, r.until_ms - now_ms)).sum());
    let this_request = round(prorated(monthly_cost, ttl_ms));
    // From the rounded parts, so the sum people read adds up to the verdict they read.
    Headroom {
        live: committed,
        live_requests: live.len(),
        this_request,
        budget_monthly,
        left: round(budget_monthly - committed - this_request),
    }
}

/// Judges `input` against the ledger's `held` reservations at `now_ms` (what the ledger's
/// `reserve` and a dry run's preview both do).
pub fn judge_input(
    held: &[tollgate_proto::LedgerReservation],
    now_ms: i64,
    input: &tollgate_proto::ReserveInput,
) -> Headroom {
    let live: Vec<Reservation> = held
        .iter()
        .map(|r| Reservation {
            request_id: r.request_id.clone(),
            monthly_cost: r.monthly_cost,
            until_ms: tollgate_proto::ms(&r.until),
        })
        .collect();
    let ttl = tollgate_proto::span_ms(&input.ttl) as i64;
    judge(&live, now_ms, input.budget_monthly, &input.request_id, input.monthly_cost, ttl)
}

impl Headroom {
    /// The judgement as the ledger answers it, for `team`.
    pub fn decision(&self, team: &str, reserved: bool) -> tollgate_proto::HeadroomDecision {
        tollgate_proto::HeadroomDecision {
            team: team.to_string(),
            admitted: self.admitted(),
            reserved,
            live: self.live,
            live_requests: self.live_requests as u32,
            this_request: self.this_request,
            budget_monthly: self.budget_monthly,
            left: self.left,
            text: self.describe(team),
        }
    }
}

/// What `added_ms` more of a request costs at `monthly_cost`, to the cent.
pub fn price(monthly_cost: f64, added_ms: i64) -> f64 {
    round(prorated(monthly_cost, added_ms))
}

/// To the cent, so what is shown is what was compared.
fn round(dollars: f64) -> f64 {
    // An empty sum is -0.0, which would print as "$-0.00": adding 0.0 makes it 0.0.
    (dollars * 100.0).round() / 100.0 + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn reserved(id: &str, monthly: f64, until: i64) -> Reservation {
        Reservation { request_id: id.into(), monthly_cost: monthly, until_ms: until }
    }

    #[test]
    fn live_spend_is_prorated_over_what_each_request_has_left() {
        // $600/month with 15 days left commits $300; a 10-day $300/month request costs $100.
        let live = [reserved("a", 600.0, 15 * DAY), reserved("gone", 900.0, 0)];
        let h = judge(&live, 0, 500.0, "new", 300.0, 10 * DAY);
        assert_eq!((h.live, h.live_requests, h.this_request, h.left), (300.0, 1, 100.0, 100.0));
        assert!(h.admitted());
        assert_eq!(
            h.describe("platform"),
            "team platform: live $300.00 (1 request) + this $100.00 = $400.00 of $500.00/month: $100.00 left"
        );
        let over = judge(&live, 0, 350.0, "new", 300.0, 10 * DAY);
        assert!(!over.admitted());
        assert!(
            over.describe("platform").ends_with("$400.00 of $350.00/month: $50.00 over"),
            "{}",
            over.describe("platform")
        );
    }

    #[test]
    fn a_request_already_reserved_counts_once_and_exactly_at_the_budget_is_within() {
        let live = [reserved("new", 300.0, 10 * DAY)];
        let h = judge(&live, 0, 100.0, "new", 300.0, 10 * DAY);
        assert_eq!((h.live_requests, h.left), (0, 0.0));
        assert!(h.admitted(), "exactly at the budget is within it");
        assert!(h.describe("t").contains("live $0.00 (0 requests)"), "never $-0.00: {}", h.describe("t"));
    }

    #[test]
    fn the_shown_sum_adds_up_to_the_verdict() {
        // Two 40-day $1.15/month buckets: $1.5333 each, shown as $1.53 + $1.53 = $3.06.
        let live = [reserved("a", 1.15, 40 * DAY)];
        let h = judge(&live, 0, 2.80, "b", 1.15, 40 * DAY);
        assert_eq!(
            h.describe("platform"),
            "team platform: live $1.53 (1 request) + this $1.53 = $3.06 of $2.80/month: $0.26 over"
        );
        assert_eq!(price(1.15, 10 * DAY), 0.38);
    }
}
