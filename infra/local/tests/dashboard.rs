//! infra/dashboard.json (deployed by scripts/put-dashboard) shows every Sandman metric.

use serde_json::Value;

const DASHBOARD: &str = include_str!("../../dashboard.json");

fn metric_widgets() -> Vec<Value> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("dashboard.json is JSON");
    let widgets = dashboard["widgets"].as_array().expect("dashboard has widgets").clone();
    widgets.into_iter().filter(|w| w["type"] == "metric").collect()
}

#[test]
fn every_sandman_metric_is_on_the_dashboard() {
    let shown: Vec<String> = metric_widgets()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().cloned().unwrap_or_default())
        .filter(|m| m[0] == "Sandman")
        .filter_map(|m| m[1].as_str().map(str::to_owned))
        .collect();
    for metric in [
        "Paused",
        "Resumed",
        "PauseFailures",
        "IdleMinutesSaved",
        "TickDurationMs",
    ] {
        assert!(shown.iter().any(|m| m == metric), "{metric} is not on the dashboard");
    }
}

#[test]
fn every_metric_widget_takes_the_region_from_the_deploy() {
    for widget in metric_widgets() {
        assert_eq!(widget["properties"]["region"], "${Region}", "{widget}");
    }
}
