//! The process's cryptography is ring, for everything: TLS to AWS and E2B (rustls) and JWT
//! signatures. One small provider instead of aws-lc-rs keeps aws-lc-sys (C) out of the function
//! binaries (README, "Binary size and cold start"). Trust roots come from the OS store
//! (provided.al2023's CA bundle; `SSL_CERT_FILE` overrides it), for the AWS SDK and reqwest alike.

mod jwt;

use std::sync::Once;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// Makes ring the process default for rustls (reqwest reads it when it builds a client) and for
/// jsonwebtoken. Idempotent; every constructor that needs either calls it.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means a provider was installed already (tests' own clients): it is used as is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let _ = jwt::RING.install_default();
    });
}

/// The AWS SDK's HTTP client: hyper and rustls on ring, with the OS trust roots.
pub fn aws_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
