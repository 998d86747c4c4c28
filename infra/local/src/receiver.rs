//! `make dev`'s webhook receiver: an endpoint of the development team, registered at start-up for
//! every event, that checks each delivery's signature and prints it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sandman::Sandman;
use sandman::auth::Caller;
use sandman::domain::TeamId;
use sandman::outbound::{EventType, SigningSecret, verify};
use tokio::net::TcpListener;

/// Starts the receiver on `addr` and registers it for `team`; the URL it listens on.
pub async fn start(sandman: &Sandman, team: &TeamId, addr: SocketAddr) -> Result<(String, String), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("the webhook receiver cannot listen on {addr}: {e}"))?;
    let url = format!("http://{}/webhooks", listener.local_addr().map_err(|e| e.to_string())?);
    // Registered as the team's admin would: its secret sealed like any endpoint's.
    let admin = Caller {
        team: team.clone(),
        subject: Some("make dev".into()),
        admin: true,
    };
    let events: Vec<String> = EventType::ALL.iter().map(|e| e.as_str().to_owned()).collect();
    let (endpoint, secret) = sandman
        .register_endpoint(&admin, &url, &events, Some("make dev's receiver"))
        .await
        .map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/webhooks", axum::routing::post(receive))
        .with_state(secret);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "the webhook receiver stopped");
        }
    });
    Ok((url, endpoint.endpoint_id))
}

async fn receive(State(secret): State<SigningSecret>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let checked = verify(
        &secret,
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now,
        300,
    );
    let text = String::from_utf8_lossy(&body);
    match checked {
        Ok(()) => {
            println!("  receiver  {} (signature ok) {text}", header("webhook-id"));
            StatusCode::NO_CONTENT
        }
        Err(err) => {
            println!("  receiver  {} REFUSED: {err} {text}", header("webhook-id"));
            StatusCode::UNAUTHORIZED
        }
    }
}
