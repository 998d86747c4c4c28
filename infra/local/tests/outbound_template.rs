//! The template's outbound resources agree with the code: the queue dead-letters after exactly
//! the attempts the sender counts, and the event source mapping's filters let through exactly the
//! changes `classify` turns into events.

use sandman::outbound::MAX_ATTEMPTS;
use sandman_local::table::TEMPLATE;
use serde_yaml::Value;

fn resource(name: &str) -> Value {
    let template: Value = serde_yaml::from_str(TEMPLATE).expect("template.yaml parses");
    template["Resources"][name].clone()
}

#[test]
fn the_queue_dead_letters_after_max_attempts() {
    let queue = resource("OutboundQueue");
    assert_eq!(
        queue["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(MAX_ATTEMPTS))
    );
    let function = resource("OutboundFunction");
    let timeout = function["Properties"]["Timeout"].as_u64().unwrap();
    let visibility = queue["Properties"]["VisibilityTimeout"].as_u64().unwrap();
    assert!(
        visibility >= timeout,
        "a message stays hidden while its invocation runs"
    );
}

#[test]
fn the_stream_filters_name_the_changes_classify_reads() {
    let deliveries = resource("OutboundDeliveries");
    assert_eq!(
        deliveries["Properties"]["FunctionResponseTypes"][0],
        "ReportBatchItemFailures"
    );
    let filters: Vec<serde_json::Value> = resource("OutboundTableChanges")["Properties"]["FilterCriteria"]["Filters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).expect("each pattern is JSON"))
        .collect();
    let names: Vec<&str> = filters.iter().map(|f| f["eventName"][0].as_str().unwrap()).collect();
    assert_eq!(names, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(filters[0]["dynamodb"]["Keys"]["sk"]["S"][0]["prefix"], "EVENT#");
    assert_eq!(filters[1]["dynamodb"]["NewImage"]["status"]["S"][0], "READY");
    assert_eq!(filters[1]["dynamodb"]["OldImage"]["status"]["S"][0], "PENDING");
    assert_eq!(filters[2]["dynamodb"]["Keys"]["sk"]["S"][0]["prefix"], "SNAPSHOT#");
}
