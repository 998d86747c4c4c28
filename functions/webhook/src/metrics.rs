use sandman::telemetry::Metrics;
use sandman::webhook::{Receipt, WebhookError};

/// One EMF line per delivery. Unknown sandboxes are counted, not treated as errors.
pub fn metrics_for(result: &Result<Receipt, WebhookError>) -> Metrics {
    let mut metrics = Metrics::new("webhook");
    let name = match result {
        Ok(Receipt::Applied { transitioned: true, .. }) => "WebhookTransitions",
        Ok(Receipt::Applied {
            transitioned: false, ..
        }) => "WebhookRecorded",
        Ok(Receipt::Duplicate) => "WebhookDuplicates",
        Ok(Receipt::Ignored { .. }) => "WebhookIgnored",
        Ok(Receipt::UnknownSandbox) => "WebhookUnknownSandbox",
        Err(WebhookError::Signature(_) | WebhookError::Stale | WebhookError::WrongAccount(_)) => "WebhookRejected",
        Err(WebhookError::Malformed(_)) => "WebhookMalformed",
        Err(WebhookError::Store(_) | WebhookError::Contended) => "WebhookErrors",
    };
    metrics.count("WebhookDeliveries", 1);
    metrics.count(name, 1);
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sandboxes_are_counted_apart_from_errors() {
        let metrics = metrics_for(&Ok(Receipt::UnknownSandbox));
        assert_eq!(metrics.get("WebhookUnknownSandbox"), 1.0);
        assert_eq!(metrics.get("WebhookErrors"), 0.0);
        assert_eq!(metrics.get("WebhookDeliveries"), 1.0);
        let failed = metrics_for(&Err(WebhookError::Contended));
        assert_eq!(failed.get("WebhookErrors"), 1.0);
    }
}
