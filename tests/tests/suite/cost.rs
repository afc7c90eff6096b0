//! Where the estimate comes from: Infracost (a stand-in executable printing a recorded
//! breakdown, since its pricing API is not reachable here) when configured, the price book
//! when Infracost fails or is not configured.

use tollgate_proto::Stage;

use crate::common::{LONG, TestEnv, fixtures};

fn infracost_config(key_env: &str) -> String {
    format!(
        "{LONG}\n[infracost]\nbinary = \"{}\"\napi_key_env = \"{key_env}\"\n",
        fixtures("infracost").join("fake-infracost").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infracost_prices_the_plan_and_the_price_book_takes_over_when_it_fails() {
    // The keys are set for tests in .cargo/config.toml: one the stand-in accepts, and one it
    // refuses as the real CLI refuses a bad key.
    let env = TestEnv::start(&infracost_config("INFRACOST_TEST_KEY")).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let cost = active.cost.unwrap();
    assert_eq!(cost.price_book_version, "infracost (JSON 0.2)");
    assert_eq!(cost.monthly_total, 9.192);
    assert_eq!(cost.lines.len(), 1);
    assert_eq!(cost.lines[0].address, "aws_instance.this");
    assert_eq!(cost.lines[0].resource_type, "aws_instance");
    assert!(cost.lines[0].description.starts_with("Instance usage (Linux/UNIX, on-demand, t3.micro): 730 hours x $0.0104"));
    env.shutdown().await;

    let env = TestEnv::start(&infracost_config("INFRACOST_TEST_INVALID_KEY")).await;
    let id = env.request("ec2", "alice", &[]).await;
    let active = env.wait_for(&id, Stage::Active, 60).await;
    let cost = active.cost.unwrap();
    assert_eq!(cost.price_book_version, "aws-on-demand-2026-11");
    assert_eq!(
        cost.assumptions[0],
        "Infracost could not price this plan (infracost breakdown failed (exit status: 1): Error: Invalid API key, \
         please check your INFRACOST_API_KEY environment variable); the price book did"
    );
    env.shutdown().await;
}

#[test]
fn infracost_without_its_key_stops_the_worker_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = \"{}\"\n[infracost]\nbinary = \"infracost\"\napi_key_env = \"INFRACOST_TEST_NO_SUCH_KEY\"\n",
        dir.path().display()
    );
    let config = tollgate_worker::Config::from_sources(&text, "test", &[]).unwrap();
    let err = tollgate_worker::build_activities(&config, None).err().expect("refuses to start").to_string();
    assert_eq!(
        err,
        "infracost.binary is set but INFRACOST_TEST_NO_SUCH_KEY (infracost.api_key_env) is not; set it to an Infracost API key, \
         or remove infracost.binary to price with the price book"
    );
}
