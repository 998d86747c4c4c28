//! `?limit=&cursor=` for list routes. A cursor is the store's opaque cursor with a keyed tag
//! (`sandman::crypto::Tagger`) over it and the list it came from, so a cursor from another list
//! (or another team's), or one the caller made up, is a 400, never a storage error.

use axum::extract::{FromRequestParts, Query};
use http::request::Parts;
use sandman::crypto::Tagger;
use sandman::store::Cursor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return, 1 to 100 (default 20).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page (empty: the first page). Only cursors this list returned
    /// are accepted; any other answers 400.
    cursor: Option<String>,
}

/// One page of a list, and the cursor of the next page when there is one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Query(query) =
            Query::<PageQuery>::try_from_uri(&parts.uri).map_err(|err| ApiError::invalid("query", err.body_text()))?;
        Ok(query)
    }
}

impl PageQuery {
    pub fn limit(&self) -> Result<i32, ApiError> {
        match self.limit.as_deref() {
            None => Ok(DEFAULT_LIMIT),
            Some(text) => text
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid("limit", format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
                }),
        }
    }

    /// The store cursor, if the request carried one issued for `list`.
    pub fn cursor(&self, tagger: &Tagger, list: &str) -> Result<Option<Cursor>, ApiError> {
        let Some(text) = self.cursor.as_deref().filter(|text| !text.is_empty()) else {
            return Ok(None);
        };
        let bad = || ApiError::invalid("cursor", "the cursor is not one this list returned");
        let (tag, inner) = text.split_once('.').ok_or_else(bad)?;
        if !tagger.verify(&[list, inner], tag) {
            return Err(bad());
        }
        Cursor::parse(inner).map(Some).map_err(|_| bad())
    }
}

pub fn page<T, U>(
    items: Vec<T>,
    next: Option<Cursor>,
    tagger: &Tagger,
    list: &str,
    view: impl FnMut(T) -> U,
) -> Page<U> {
    Page {
        items: items.into_iter().map(view).collect(),
        next_cursor: next.map(|cursor| format!("{}.{}", tagger.tag(&[list, cursor.as_str()]), cursor.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<&str>, cursor: Option<&str>) -> PageQuery {
        PageQuery {
            limit: limit.map(str::to_owned),
            cursor: cursor.map(str::to_owned),
        }
    }

    #[test]
    fn limits_are_bounded_and_named() {
        assert_eq!(query(None, None).limit().unwrap(), DEFAULT_LIMIT);
        assert_eq!(query(Some("100"), None).limit().unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "2.5"] {
            assert_eq!(
                query(Some(bad), None).limit().unwrap_err().status(),
                http::StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_cursor_only_works_for_the_list_it_came_from() {
        let tagger = Tagger::for_deployment("page cursors", &sandman::secrets::Secrets::default());
        let store_cursor = Cursor::parse("eyJwayI6WyJTIiwiUCMxIl19").expect("a store cursor");
        let issued = page(
            Vec::<u8>::new(),
            Some(store_cursor.clone()),
            &tagger,
            "events:t/p",
            |x| x,
        )
        .next_cursor
        .unwrap();
        assert_eq!(
            query(None, Some(&issued)).cursor(&tagger, "events:t/p").unwrap(),
            Some(store_cursor)
        );
        assert!(query(None, Some(&issued)).cursor(&tagger, "events:t/q").is_err());
        assert!(query(None, Some("garbage")).cursor(&tagger, "events:t/p").is_err());
        // The same tag on another start key: forged.
        let (tag, _) = issued.split_once('.').unwrap();
        let forged = format!("{tag}.eyJwayI6WyJTIiwiUCMyIl19");
        assert!(query(None, Some(&forged)).cursor(&tagger, "events:t/p").is_err());
    }
}
