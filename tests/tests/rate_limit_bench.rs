//! What a per-team request limit costs, measured both ways the API could keep it (security
//! review M2): the token bucket it keeps in each instance's memory (`sandman_api::rate`), and a
//! bucket shared by every instance in DynamoDB, here its cheapest form, a per-second counter item
//! taken with one conditional `UpdateItem` per request (no read). Run with
//! `cargo nextest run -p sandman-tests --test rate_limit_bench --run-ignored all --no-capture`.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use sandman::config::{RequestRate, RequestRates};
use sandman::domain::TeamId;
use sandman_api::rate::TeamRates;
use sandman_local::testkit::TestTable;

const TEAMS: usize = 1_000;
const ADMITS: usize = 1_000_000;
const SHARED_REQUESTS: usize = 200;

#[tokio::test]
#[ignore = "benchmark: prints figures; run with --run-ignored all --no-capture"]
async fn the_cost_of_a_per_team_request_limit() {
    // In memory: one lock, one map lookup, a little arithmetic.
    let rate = RequestRate {
        per_second: u32::MAX,
        burst: u32::MAX,
    };
    let rates = TeamRates::new(RequestRates {
        default: Some(rate),
        teams: Default::default(),
    });
    let teams: Vec<TeamId> = (0..TEAMS)
        .map(|n| TeamId::parse(format!("team-{n}")).unwrap())
        .collect();
    let now = time::OffsetDateTime::now_utc();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for n in 0..ADMITS {
            assert!(rates.admit(&teams[n % TEAMS], now).is_ok());
        }
        runs.push(started.elapsed().as_nanos() as f64 / ADMITS as f64);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "\nper-instance bucket: {:.0} ns per request (median of 5 runs of {ADMITS} over {TEAMS} teams; min {:.0}, max {:.0}), 0 RCU, 0 WCU",
        runs[2], runs[0], runs[4]
    );

    // Shared: one conditional write per request, refused or not (a refused write is billed too).
    let table = TestTable::create().await;
    let (mut units, mut refused, mut took) = (0.0, 0, Duration::ZERO);
    let second = now.unix_timestamp();
    for n in 0..SHARED_REQUESTS {
        let started = Instant::now();
        let out = table
            .client
            .update_item()
            .table_name(&table.name)
            .key("pk", AttributeValue::S("TEAM#team-0".into()))
            .key("sk", AttributeValue::S(format!("RATE#{}", second + (n / 100) as i64)))
            .update_expression("ADD requests :one SET expiresAt = :expires")
            .condition_expression("attribute_not_exists(requests) OR requests < :limit")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N("50".into()))
            .expression_attribute_values(":expires", AttributeValue::N((second + 60).to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        took += started.elapsed();
        match out {
            Ok(out) => units += out.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or(0.0),
            // DynamoDB bills a write its condition refused (1 WCU) but reports nothing with the error.
            Err(_) => {
                units += 1.0;
                refused += 1;
            }
        }
    }
    println!(
        "shared DynamoDB bucket: {:.2} WCU per request ({SHARED_REQUESTS} requests, {refused} over the limit), {:.2} ms a call on DynamoDB Local",
        units / SHARED_REQUESTS as f64,
        took.as_secs_f64() * 1000.0 / SHARED_REQUESTS as f64
    );
    println!(
        "at on-demand prices ($0.625 per million writes; HTTP API $1.00 per million requests): the shared bucket adds $0.625 per million requests, 62% of what API Gateway charges for them"
    );
}
