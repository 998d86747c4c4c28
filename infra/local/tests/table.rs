//! The table from template.yaml, created in DynamoDB Local (`make test` starts it).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ProjectionType, TimeToLiveStatus};
use sandman_local::table::{AttributeKind, KeySchema, Projection, table_definition};
use sandman_local::testkit::TestTable;

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: &str) -> AttributeValue {
    AttributeValue::N(value.to_owned())
}

fn key(hash: &str, range: Option<&str>) -> KeySchema {
    KeySchema {
        hash: hash.to_owned(),
        range: range.map(str::to_owned),
    }
}

fn include(attributes: &[&str]) -> Projection {
    Projection::Include(attributes.iter().map(|a| a.to_string()).collect())
}

#[test]
fn template_defines_the_table_sandman_expects() {
    let table = table_definition().expect("template.yaml defines the table");
    assert_eq!(table.key, key("pk", Some("sk")));
    assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));

    let expected = [
        (
            "idle",
            key("idleShard", Some("idleAt")),
            include(&[
                "teamId",
                "projectId",
                "sandboxId",
                "version",
                "idleTimeoutMs",
                "snapshotOnIdle",
                "failures",
                "timeoutAt",
                "busyCpuPercent",
                "busyDeferMaxMs",
                "busySince",
                "runningSince",
                "capHandoff",
            ]),
        ),
        ("bySandbox", key("sandboxKey", None), Projection::KeysOnly),
        (
            "byTeam",
            key("teamKey", Some("projectKey")),
            include(&[
                "teamId",
                "projectId",
                "templateId",
                "state",
                "sandboxId",
                "stateSince",
                "version",
            ]),
        ),
        (
            "prune",
            key("pruneShard", Some("pruneAt")),
            include(&["teamId", "projectId"]),
        ),
        (
            "transit",
            key("transitShard", Some("stateSince")),
            include(&["teamId", "projectId", "state", "sandboxId", "version"]),
        ),
    ];
    assert_eq!(table.indexes.len(), expected.len());
    for (name, key, projection) in expected {
        let index = table.index(name).unwrap_or_else(|| panic!("index {name} is missing"));
        assert_eq!((&index.key, &index.projection), (&key, &projection), "index {name}");
    }
    let numbers: Vec<_> = table
        .attributes
        .iter()
        .filter(|a| a.kind == AttributeKind::Number)
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(numbers, ["idleAt", "pruneAt", "stateSince"]);
}

#[tokio::test]
async fn created_table_has_the_template_keys_and_every_index() {
    let table = TestTable::create().await;
    let described = table
        .client
        .describe_table()
        .table_name(&table.name)
        .send()
        .await
        .unwrap();
    let described = described.table().expect("DescribeTable returns the table");
    let definition = table_definition().unwrap();

    assert_eq!(described.table_name(), Some(table.name.as_str()));
    assert_eq!(
        described.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let hash = described
        .key_schema()
        .iter()
        .find(|k| k.key_type() == &KeyType::Hash)
        .map(|k| k.attribute_name());
    assert_eq!(hash, Some("pk"));

    let mut indexes: Vec<_> = described
        .global_secondary_indexes()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["bySandbox", "byTeam", "idle", "prune", "transit"]);
    for index in described.global_secondary_indexes() {
        let name = index.index_name().unwrap_or_default();
        let expected = definition.index(name).expect("every created index is in the template");
        let projection = index.projection().expect("index has a projection");
        let mut created_attributes = projection.non_key_attributes().to_vec();
        created_attributes.sort_unstable();
        match &expected.projection {
            Projection::Include(attributes) => {
                let mut attributes = attributes.clone();
                attributes.sort_unstable();
                assert_eq!(projection.projection_type(), Some(&ProjectionType::Include), "{name}");
                assert_eq!(created_attributes, attributes, "{name}");
            }
            Projection::KeysOnly => assert_eq!(projection.projection_type(), Some(&ProjectionType::KeysOnly), "{name}"),
            Projection::All => assert_eq!(projection.projection_type(), Some(&ProjectionType::All), "{name}"),
        }
    }
}

#[tokio::test]
async fn an_item_round_trips_and_shows_in_the_idle_index_with_only_projected_attributes() {
    let table = TestTable::create().await;
    let item: HashMap<String, AttributeValue> = [
        ("pk", s("TEAM#t1#PROJECT#p1")),
        ("sk", s("SESSION")),
        ("teamId", s("t1")),
        ("projectId", s("p1")),
        ("sandboxId", s("sbx-1")),
        ("version", n("3")),
        ("lastActiveAt", n("1700000000")),
        ("idleShard", s("IDLE#0")),
        ("idleAt", n("1700000600")),
        ("templateId", s("base")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    table
        .client
        .put_item()
        .table_name(&table.name)
        .set_item(Some(item.clone()))
        .send()
        .await
        .unwrap();

    let got = table
        .client
        .get_item()
        .table_name(&table.name)
        .key("pk", s("TEAM#t1#PROJECT#p1"))
        .key("sk", s("SESSION"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.item(), Some(&item));

    let idle = table
        .client
        .query()
        .table_name(&table.name)
        .index_name("idle")
        .key_condition_expression("idleShard = :shard AND idleAt <= :now")
        .expression_attribute_values(":shard", s("IDLE#0"))
        .expression_attribute_values(":now", n("1700000900"))
        .send()
        .await
        .unwrap();
    let [found] = idle.items() else {
        panic!("expected one idle item, got {:?}", idle.items())
    };
    assert_eq!(found.get("sandboxId"), Some(&s("sbx-1")));
    assert_eq!(
        found.get("templateId"),
        None,
        "templateId is not projected into the idle index"
    );
}

#[tokio::test]
async fn an_item_without_index_attributes_stays_out_of_the_sparse_index() {
    let table = TestTable::create().await;
    table
        .client
        .put_item()
        .table_name(&table.name)
        .item("pk", s("TEAM#t1#PROJECT#p2"))
        .item("sk", s("SESSION"))
        .item("teamId", s("t1"))
        .send()
        .await
        .unwrap();
    let idle = table
        .client
        .query()
        .table_name(&table.name)
        .index_name("idle")
        .key_condition_expression("idleShard = :shard")
        .expression_attribute_values(":shard", s("IDLE#0"))
        .send()
        .await
        .unwrap();
    assert!(idle.items().is_empty(), "{:?}", idle.items());
}

#[tokio::test]
async fn ttl_is_enabled_on_expires_at() {
    let table = TestTable::create().await;
    let ttl = table
        .client
        .describe_time_to_live()
        .table_name(&table.name)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().expect("TTL is described");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
}

#[tokio::test]
async fn each_test_table_is_separate() {
    let (a, b) = (TestTable::create().await, TestTable::create().await);
    assert_ne!(a.name, b.name);
    a.client
        .put_item()
        .table_name(&a.name)
        .item("pk", s("P"))
        .item("sk", s("S"))
        .send()
        .await
        .unwrap();
    let in_b = b
        .client
        .get_item()
        .table_name(&b.name)
        .key("pk", s("P"))
        .key("sk", s("S"))
        .send()
        .await
        .unwrap();
    assert_eq!(in_b.item(), None);
}

#[tokio::test]
async fn creating_an_existing_table_reports_the_dynamodb_error() {
    let table = TestTable::create().await;
    let error = sandman_local::table::create_table(&table.client, &table.name)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("CreateTable"), "{error}");
    assert!(error.to_string().contains(&table.name), "{error}");
}
