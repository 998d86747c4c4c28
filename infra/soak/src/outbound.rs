//! The teams' outbound webhook receiver: one URL per endpoint registered (`/hook/{account}/{n}`),
//! every delivery kept as it arrived, for the judge (signed with that endpoint's secret, about a
//! project of that team).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use http::{HeaderMap, StatusCode};

#[derive(Debug, Clone)]
pub struct Received {
    pub url: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    pub at: Instant,
}

/// An endpoint the API said it registered: its team (account index), id and signing secret.
#[derive(Debug, Clone)]
pub struct Registered {
    pub account: usize,
    pub id: String,
    pub secret: String,
}

#[derive(Debug, Default)]
struct Book {
    next: usize,
    endpoints: HashMap<String, Registered>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    base: String,
    book: Arc<Mutex<Book>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let receiver = Receiver {
            base,
            book: Arc::default(),
        };
        let app = Router::new().fallback(receive).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A URL no endpoint has used yet, for one of `account`'s.
    pub fn new_url(&self, account: usize) -> String {
        let mut book = self.book();
        book.next += 1;
        format!("{}/hook/{account}/{}", self.base, book.next)
    }

    pub fn registered(&self, account: usize, url: &str, id: &str, secret: &str) {
        self.book().endpoints.insert(
            url.to_owned(),
            Registered {
                account,
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
        );
    }

    /// One of `account`'s endpoints, to delete.
    pub fn any_endpoint(&self, account: usize, rng: &mut fastrand::Rng) -> Option<String> {
        let book = self.book();
        let ids: Vec<&String> = book
            .endpoints
            .values()
            .filter(|e| e.account == account)
            .map(|e| &e.id)
            .collect();
        (!ids.is_empty()).then(|| ids[rng.usize(0..ids.len())].clone())
    }

    pub fn endpoint(&self, url: &str) -> Option<Registered> {
        self.book().endpoints.get(url).cloned()
    }

    /// The team (account index) a receiver URL was made for.
    pub fn account_of(url: &str) -> Option<usize> {
        url.split("/hook/").nth(1)?.split('/').next()?.parse().ok()
    }

    pub fn received(&self) -> Vec<Received> {
        self.book().received.clone()
    }
}

async fn receive(State(receiver): State<Receiver>, uri: http::Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let received = Received {
        url: format!("{}{}", receiver.base, uri.path()),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        at: Instant::now(),
    };
    receiver.book().received.push(received);
    StatusCode::NO_CONTENT
}
