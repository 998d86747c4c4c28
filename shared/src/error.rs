//! Sandman's one error type for its operations, defined by the protocol (`sandman_protocol::Error`).

pub use sandman_protocol::Error;

impl From<crate::templates::TemplateRefused> for Error {
    fn from(refused: crate::templates::TemplateRefused) -> Self {
        Error::Invalid {
            field: "templateId",
            message: refused.to_string(),
        }
    }
}
