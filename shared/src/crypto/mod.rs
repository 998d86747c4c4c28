//! The process's cryptography is ring, for everything: TLS to AWS and E2B (rustls) and JWT
//! signatures. One small provider instead of aws-lc-rs keeps aws-lc-sys (C) out of the function
//! binaries (README, "Binary size and cold start"). Trust roots come from the OS store
//! (provided.al2023's CA bundle; `SSL_CERT_FILE` overrides it), for the AWS SDK and reqwest alike.

mod jwt;
mod tag;

use std::sync::Once;

pub use tag::Tagger;

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
