//! Every metric template.yaml's alarms and dashboard read in namespace `Sandman` is one the code
//! emits (or the access log's metric filter counts), with the same name and dimensions, from
//! exactly one function (a series two functions write, like an undimensioned `TickDurationMs`,
//! would mix them), in the stack's own series (`Stack`). The docs state the count (`docs.rs`).

use std::collections::{BTreeMap, BTreeSet};

use sandman::enforcer::TickReport;
use sandman::reconciler::ReconcileReport;
use sandman::retention::PruneReport;
use sandman::telemetry::{Metrics, NAMESPACE};
use sandman::webhook::{Ignored, Receipt, SignatureError, WebhookError};
use sandman_local::deployed::{Deployment, STACK};
use sandman_local::table::TEMPLATE;

type Series = (String, String, BTreeMap<String, String>);

/// Every series the code writes, with the functions that write it. Each report's metrics come
/// from its `metrics()`, as the function emits them; the webhook's from each kind of outcome; a
/// tick skipped for want of an E2B key from both scheduled functions. `Stack` is the value the
/// template gives every function (`SANDMAN_STACK`), checked below.
fn emitted() -> BTreeMap<Series, BTreeSet<String>> {
    let mut all: Vec<Metrics> = vec![
        TickReport::default().metrics(),
        ReconcileReport::default().metrics(),
        PruneReport::default().metrics(),
        PruneReport {
            dry_run: true,
            ..PruneReport::default()
        }
        .metrics(),
        sandman::key_missing_metrics("idle-enforcer"),
        sandman::key_missing_metrics("snapshot-pruner"),
    ];
    let outcomes = [
        Ok(Receipt::Applied {
            state: None,
            transitioned: true,
        }),
        Ok(Receipt::Applied {
            state: None,
            transitioned: false,
        }),
        Ok(Receipt::Duplicate),
        Ok(Receipt::Ignored { reason: Ignored::Stale }),
        Ok(Receipt::UnknownSandbox),
        Err(WebhookError::Signature(SignatureError::Mismatch)),
        Err(WebhookError::Malformed("x".into())),
        Err(WebhookError::Contended),
    ];
    all.extend(outcomes.iter().map(sandman_webhook::metrics_for));
    let mut series: BTreeMap<Series, BTreeSet<String>> = BTreeMap::new();
    for metrics in all {
        let doc = metrics.to_emf(0);
        let function = doc["Function"].as_str().unwrap_or_default().to_owned();
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            let namespace = directive["Namespace"].as_str().unwrap().to_owned();
            for set in directive["Dimensions"].as_array().unwrap() {
                let dimensions: BTreeMap<String, String> = set
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_owned())
                    .map(|name| match name.as_str() {
                        "Stack" => (name, STACK.to_owned()),
                        _ => (name.clone(), doc[&name].as_str().unwrap_or_default().to_owned()),
                    })
                    .collect();
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    series
                        .entry((namespace.clone(), name, dimensions.clone()))
                        .or_default()
                        .insert(function.clone());
                }
            }
        }
    }
    // Counted by the template's metric filters from log lines (API Gateway's access log).
    for filter in deployment().metric_filters().unwrap() {
        series
            .entry((filter.namespace, filter.name, filter.dimensions))
            .or_default()
            .insert(format!("metric filter {}", filter.reader));
    }
    series
}

fn deployment() -> Deployment {
    Deployment::from_template(
        TEMPLATE,
        &[("JwtIssuer", "https://auth.example.com/"), ("JwtAudience", "sandman")],
    )
    .unwrap()
}

#[test]
fn every_sandman_metric_the_alarms_and_the_dashboard_read_is_emitted_by_one_function() {
    let emitted = emitted();
    let reads = deployment().metric_reads().unwrap();
    let ours: Vec<_> = reads.iter().filter(|read| read.namespace == NAMESPACE).collect();
    assert!(
        ours.iter().any(|read| read.reader == "Dashboard"),
        "the dashboard is in the template"
    );
    for read in ours {
        let series = (read.namespace.clone(), read.name.clone(), read.dimensions.clone());
        match emitted.get(&series) {
            None => panic!(
                "{} reads {} {:?}, which no function emits with those dimensions",
                read.reader, read.name, read.dimensions
            ),
            Some(writers) => assert_eq!(
                writers.len(),
                1,
                "{} reads {} {:?}, which mixes {writers:?}",
                read.reader,
                read.name,
                read.dimensions
            ),
        }
    }
}

#[test]
fn lambda_and_queue_metrics_name_resources_of_the_stack() {
    let deployment = deployment();
    let functions: BTreeSet<String> = deployment
        .functions()
        .iter()
        .filter_map(|f| deployment.reference(&f.logical_id))
        .collect();
    for read in deployment.metric_reads().unwrap() {
        match read.namespace.as_str() {
            "AWS/Lambda" => assert!(functions.contains(&read.dimensions["FunctionName"]), "{read:?}"),
            "AWS/ApiGateway" => assert_eq!(read.dimensions["ApiId"], format!("{STACK}-HttpApi"), "{read:?}"),
            "AWS/Events" => assert!(
                [
                    "IdleEnforcerFunctionEnforce",
                    "IdleEnforcerFunctionReconcile",
                    "SnapshotPrunerFunctionPrune"
                ]
                .iter()
                .any(|rule| read.dimensions["RuleName"] == format!("{STACK}-{rule}")),
                "{read:?}"
            ),
            "AWS/SQS" => assert!(
                ["sandman-SchedulesDeadLetterQueue", "sandman-OutboundDeadLetterQueue"]
                    .iter()
                    .any(|queue| read.dimensions["QueueName"].starts_with(queue)),
                "{read:?}"
            ),
            "Sandman" => {}
            other => panic!("{other}: a namespace this test does not check ({read:?})"),
        }
    }
}

#[test]
fn the_deploy_guide_states_the_custom_metric_count() {
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/deploy.md")).unwrap();
    let stated = format!("{} custom metrics", emitted().len());
    assert!(
        guide.contains(&stated),
        "docs/deploy.md should say \"{stated}\" (and their monthly cost)"
    );
}

#[test]
fn every_function_writes_its_metrics_under_the_stacks_name() {
    for function in deployment().functions() {
        assert_eq!(
            function
                .environment
                .get(sandman::telemetry::STACK_VARIABLE)
                .map(String::as_str),
            Some(STACK),
            "{}: the Stack dimension the alarms and the dashboard read",
            function.logical_id
        );
    }
}
