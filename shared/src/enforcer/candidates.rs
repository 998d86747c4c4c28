//! Idle candidates as a lazy stream: each shard is read a page at a time, only when the tick is
//! ready for more, and the shards are interleaved so one busy shard does not delay the others.

use futures::stream::{self, BoxStream, StreamExt};
use time::OffsetDateTime;

use crate::Sandman;
use crate::store::{Cursor, IdleCandidate, StoreError, keys};

/// Items per query. With nothing idle every shard answers one empty page.
pub(crate) const PAGE_SIZE: i32 = 100;

enum Next {
    First,
    After(Cursor),
    Done,
}

impl Sandman {
    pub(crate) fn idle_candidates_stream(
        &self,
        now: OffsetDateTime,
    ) -> BoxStream<'_, Result<IdleCandidate, StoreError>> {
        stream::select_all(keys::idle_shards().map(|shard| self.shard_stream(shard, now))).boxed()
    }

    fn shard_stream(&self, shard: String, now: OffsetDateTime) -> BoxStream<'_, Result<IdleCandidate, StoreError>> {
        stream::unfold(Next::First, move |next| {
            let shard = shard.clone();
            async move {
                let cursor = match next {
                    Next::Done => return None,
                    Next::First => None,
                    Next::After(cursor) => Some(cursor),
                };
                let page: Vec<Result<IdleCandidate, StoreError>> =
                    match self.store.idle_page(&shard, now, PAGE_SIZE, cursor.as_ref()).await {
                        Ok(page) => {
                            let next = page.next.map_or(Next::Done, Next::After);
                            return Some((stream::iter(page.items.into_iter().map(Ok).collect::<Vec<_>>()), next));
                        }
                        Err(err) => vec![Err(err)],
                    };
                Some((stream::iter(page), Next::Done))
            }
        })
        .flatten()
        .boxed()
    }
}
