//! Every metric template.yaml's alarms and dashboard read in namespace `Sandman` is one the code
//! emits, with the same name and dimensions, from exactly one function (a series two functions
//! write, like an undimensioned `TickDurationMs`, would mix them). The README states the count.

use std::collections::{BTreeMap, BTreeSet};

use sandman::enforcer::TickReport;
use sandman::reconciler::ReconcileReport;
use sandman::retention::PruneReport;
use sandman::telemetry::{Metrics, NAMESPACE};
use sandman::webhook::{Ignored, Receipt, SignatureError, WebhookError};
use sandman_local::deployed::Deployment;
use sandman_local::table::TEMPLATE;

const README: &str = include_str!("../../../README.md");

type Series = (String, String, BTreeMap<String, String>);

/// Every series the code writes, with the functions that write it. Each report's metrics come
/// from its `metrics()`, as the function emits them; the webhook's from each kind of outcome.
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
                    .map(|name| (name.clone(), doc[&name].as_str().unwrap_or_default().to_owned()))
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
            "AWS/SQS" => assert!(
                ["sandman-SchedulesDeadLetterQueue", "sandman-OutboundDeadLetterQueue"]
                    .iter()
                    .any(|queue| read.dimensions["QueueName"].starts_with(queue)),
                "{read:?}"
            ),
            _ => {}
        }
    }
}

#[test]
fn the_readme_states_the_custom_metric_count() {
    let count = emitted().len();
    let stated = format!("{count} custom metrics");
    assert!(
        README.contains(&stated),
        "README.md should say \"{stated}\" (and its monthly cost)"
    );
}
