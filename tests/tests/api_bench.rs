//! Benchmark of the two hot routes, status and heartbeat: the handler's own latency and the
//! DynamoDB capacity each consumes. Ignored by `cargo test`; `scripts/bench api` (part of
//! `make bench`) starts a DynamoDB Local of its own and runs it with the bench profile:
//!
//! ```text
//! cargo test --profile bench -p sandman-tests --test api_bench -- --ignored --nocapture
//! ```
//!
//! The router is driven in-process (tower `oneshot`, no socket), JWT check included. Status
//! always makes one DynamoDB read, so its own latency is estimated by interleaving each request
//! with one raw `GetItem` of the same item through the same client and subtracting the raw
//! read's percentiles (and, noisier, the per-request differences); a heartbeat throttled in
//! memory makes no DynamoDB call, so its time is the handler's alone. Timed back to back the
//! handler runs with hot caches; right after a DynamoDB call (and with DynamoDB Local's JVM on
//! the same cores) the same work takes several times longer, which is what the subtraction sees.

mod api_kit;

use std::time::{Duration, Instant};

use api_kit::{ApiStack, request, send};
use http::{Method, StatusCode};
use sandman::store::{Capacity, Consistency, Store};

const ROUNDS: usize = 5000;
const WARM_UP: usize = 100;

struct Sample(Vec<f64>);

impl Sample {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or(f64::NAN)
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what:<58} p50 {:>8.1} µs   p99 {:>8.1} µs",
            self.percentile(0.5),
            self.percentile(0.99)
        )
    }
}

fn micros(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e6
}

fn per_call(before: Capacity, after: Capacity, n: usize) -> String {
    let n = n as f64;
    format!(
        "{:.2} RCU, {:.2} WCU, {:.2} DynamoDB calls per request",
        (after.read_units - before.read_units) / n,
        (after.write_units - before.write_units) / n,
        (after.calls - before.calls) as f64 / n
    )
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "a benchmark: run with --ignored --nocapture (see the file's header)"]
async fn status_and_heartbeat() {
    let api = ApiStack::start().await;
    api.register("bench").await;
    assert_eq!(api.open("bench").await.status, StatusCode::OK);
    let key = api.stack.key("bench");
    // Its own store, so its reads do not count against the router's.
    let store = Store::new(api.stack.table.client.clone(), api.stack.table.name.clone());
    let status = || {
        send(
            &api.router,
            request(Method::GET, "/v1/projects/bench/sandbox", Some(&api.token), None),
        )
    };
    let heartbeat = || {
        send(
            &api.router,
            request(
                Method::POST,
                "/v1/projects/bench/sandbox/activity",
                Some(&api.token),
                None,
            ),
        )
    };

    for _ in 0..WARM_UP {
        status().await;
        store.get_project(&key, Consistency::Eventual).await.unwrap();
    }

    // Status: routed vs raw GetItem, interleaved so both see the same DynamoDB Local.
    let (mut routed, mut raw, mut own) = (Vec::new(), Vec::new(), Vec::new());
    let before = api.capacity();
    for round in 0..ROUNDS {
        let time_raw = async || {
            let t = Instant::now();
            store.get_project(&key, Consistency::Eventual).await.unwrap();
            micros(t)
        };
        // Alternate which goes first, so neither always follows the other.
        let early = if round % 2 == 0 { Some(time_raw().await) } else { None };
        let t = Instant::now();
        let reply = status().await;
        let r = micros(t);
        assert_eq!(reply.status, StatusCode::OK);
        let g = match early {
            Some(g) => g,
            None => time_raw().await,
        };
        routed.push(r);
        raw.push(g);
        own.push(r - g);
    }
    let after = api.capacity();

    // Heartbeat throttled in this instance's memory: no DynamoDB, no E2B.
    for _ in 0..WARM_UP {
        heartbeat().await;
    }
    let e2b_calls = api.stack.emulator.calls().len();
    let hb_before = api.capacity();
    // The same right after a DynamoDB call, as in a real instance: caches are colder.
    let mut cold = Vec::new();
    for _ in 0..ROUNDS {
        store.get_project(&key, Consistency::Eventual).await.unwrap();
        let t = Instant::now();
        heartbeat().await;
        cold.push(micros(t));
    }
    let mut throttled = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let reply = heartbeat().await;
        throttled.push(micros(t));
        assert_eq!(reply.json["outcome"], "throttled");
    }
    let hb_after = api.capacity();
    assert_eq!(api.stack.emulator.calls().len(), e2b_calls);

    // Heartbeat throttled by the stored lastActiveAt (a fresh instance each time): one read.
    let fresh_rounds = 200;
    let mut stored = Capacity::default();
    for _ in 0..fresh_rounds {
        let (router, other_store) = api.another_instance();
        let reply = send(
            &router,
            request(
                Method::POST,
                "/v1/projects/bench/sandbox/activity",
                Some(&api.token),
                None,
            ),
        )
        .await;
        assert_eq!(reply.json["outcome"], "throttled");
        let used = other_store.capacity().total();
        stored = Capacity {
            read_units: stored.read_units + used.read_units,
            write_units: stored.write_units + used.write_units,
            calls: stored.calls + used.calls,
        };
    }

    // Heartbeat that records (the interval has passed each time): one read and one write.
    let write_rounds = 200;
    let rec_before = api.capacity();
    for _ in 0..write_rounds {
        api.stack.clock.advance(Duration::from_secs(31));
        assert_eq!(heartbeat().await.json["outcome"], "recorded");
    }
    let rec_after = api.capacity();

    // The JWT check alone, part of every request above.
    let mut jwt = Vec::new();
    let verifier = sandman::auth::Verifier::new(&api.stack.sandman.config.auth, &api.stack.sandman.secrets).unwrap();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        verifier.verify(&api.token).await.unwrap();
        jwt.push(micros(t));
    }

    println!("\nSandman API benchmark: {ROUNDS} requests each, in-process router, DynamoDB Local");
    let (routed, raw, own) = (Sample(routed), Sample(raw), Sample(own));
    println!("{}", routed.line("GET  .../sandbox (status), routed, incl. GetItem"));
    println!("{}", raw.line("     raw eventually consistent GetItem (same item)"));
    let tail = routed.percentile(0.99) - raw.percentile(0.99);
    // DynamoDB Local's tail (its JVM shares the cores) can be wider than the handler's work.
    let tail = if tail > 0.0 {
        format!("{tail:>8.1} µs")
    } else {
        "n/a (DynamoDB Local's tail dominates)".into()
    };
    println!(
        "{:<58} p50 {:>8.1} µs   p99 {tail}",
        "     status handler's own (routed - raw percentiles)",
        routed.percentile(0.5) - raw.percentile(0.5),
    );
    println!("{}", own.line("     status handler's own (paired per request; noisy)"));
    println!("     capacity: {}", per_call(before, after, ROUNDS));
    println!(
        "{}",
        Sample(throttled).line("POST .../sandbox/activity, throttled in memory")
    );
    println!("{}", Sample(cold).line("     the same, each right after a raw GetItem"));
    println!("     capacity: {}", per_call(hb_before, hb_after, 2 * ROUNDS));
    println!(
        "     heartbeat throttled by the stored time (new instance): {}",
        per_call(Capacity::default(), stored, fresh_rounds)
    );
    println!(
        "     heartbeat that records: {}",
        per_call(rec_before, rec_after, write_rounds)
    );
    println!("{}", Sample(jwt).line("     of which the HS256 JWT check"));
}
