//! What an open answers: how it went (`OpenPath`) and the project as it then is. Shared by every
//! path that hands out a sandbox (open, resume, restore, a heartbeat's wake).

use serde::Serialize;

use super::project;
use crate::domain::{ProjectKey, SnapshotId};
use crate::error::Error;
use crate::port::Port;
use crate::record::ProjectRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenPath {
    AlreadyRunning,
    Resumed,
    Restored,
    Created,
    /// Another request is starting, resuming or pausing it: poll the status.
    InProgress,
}

#[derive(Debug, Clone)]
pub struct Opened {
    pub path: OpenPath,
    pub record: ProjectRecord,
    pub restored_from: Option<SnapshotId>,
    /// Why an earlier rung of the ladder was passed over (a snapshot that failed to restore).
    pub fallback_reason: Option<String>,
}

impl Opened {
    pub(crate) fn in_progress(record: ProjectRecord) -> Opened {
        Opened {
            path: OpenPath::InProgress,
            record,
            restored_from: None,
            fallback_reason: None,
        }
    }
}

/// A step of the open ladder: this request did it, or another writer was first.
pub(crate) enum Step {
    Done(Box<Opened>),
    Lost,
}

pub(crate) async fn opened<P: Port>(
    port: &P,
    path: OpenPath,
    key: &ProjectKey,
    restored_from: Option<SnapshotId>,
    fallback_reason: Option<String>,
) -> Result<Opened, Error> {
    Ok(Opened {
        path,
        record: project(port, key).await?,
        restored_from,
        fallback_reason,
    })
}
