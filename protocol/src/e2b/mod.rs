//! E2B as the protocol sees it: the wire types of the calls Sandman makes, and every way a call
//! can fail, classified by what it means for the lifecycle (refused, or perhaps done).

mod error;
mod types;

pub use error::E2bError;
pub use types::*;
