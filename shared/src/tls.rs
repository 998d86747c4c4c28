//! TLS for every HTTPS client a function builds (the AWS SDK's, E2B's, the JWKS fetcher's): one
//! crypto provider, ring, so the binaries carry one crypto stack (see the workspace Cargo.toml).

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// Makes ring the process's rustls provider; reqwest clients take it from there. Idempotent.
pub(crate) fn install_crypto_provider() {
    // An error means a provider is installed already (an earlier call, or the embedding program).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The AWS SDK's HTTPS client, on rustls with ring.
pub(crate) fn aws_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}
