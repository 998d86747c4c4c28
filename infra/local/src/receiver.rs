//! `make dev`'s webhook receiver: an endpoint of the development team, registered at start-up for
//! every event, that checks each delivery's signature and prints it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use sandman::Sandman;
use sandman::domain::TeamId;
use sandman::outbound::{Endpoint, EventType, SigningSecret, generate_secret, new_endpoint_id, verify};
use tokio::net::TcpListener;

/// Starts the receiver on `addr` and registers it for `team`; the URL it listens on.
pub async fn start(sandman: &Sandman, team: &TeamId, addr: SocketAddr) -> Result<(String, String), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("the webhook receiver cannot listen on {addr}: {e}"))?;
    let url = format!("http://{}/webhooks", listener.local_addr().map_err(|e| e.to_string())?);
    let endpoint = Endpoint {
        team: team.clone(),
        endpoint_id: new_endpoint_id(),
        url: url.clone(),
        events: EventType::ALL.to_vec(),
        description: "make dev's receiver".into(),
        secret: generate_secret(),
        created_at: sandman.now(),
    };
    let registered = sandman
        .store
        .put_endpoint(&endpoint, sandman.config.outbound.max_endpoints_per_team)
        .await
        .map_err(|e| e.to_string())?;
    if !registered {
        return Err(format!("team {team} has as many webhook endpoints as it may"));
    }
    let app = Router::new()
        .route("/webhooks", axum::routing::post(receive))
        .with_state(endpoint.secret.clone());
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
