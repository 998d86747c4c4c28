//! Opaque pagination cursors: DynamoDB's `LastEvaluatedKey`, base64url-encoded JSON.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::items::Item;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

pub use sandman_protocol::BadCursor;

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, BadCursor> {
        let cursor = Cursor(text.to_string());
        cursor.to_key().map(|_| cursor)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn from_key(key: Option<&Item>) -> Option<Cursor> {
        let key = key.filter(|k| !k.is_empty())?;
        let plain: HashMap<&str, (&str, &str)> = key
            .iter()
            .filter_map(|(name, value)| match value {
                AttributeValue::S(s) => Some((name.as_str(), ("S", s.as_str()))),
                AttributeValue::N(n) => Some((name.as_str(), ("N", n.as_str()))),
                _ => None,
            })
            .collect();
        let json = serde_json::to_vec(&plain).ok()?;
        Some(Cursor(URL_SAFE_NO_PAD.encode(json)))
    }

    pub(crate) fn to_key(&self) -> Result<Item, BadCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| BadCursor)?;
        let plain: HashMap<String, (String, String)> = serde_json::from_slice(&bytes).map_err(|_| BadCursor)?;
        plain
            .into_iter()
            .map(|(name, (kind, value))| match kind.as_str() {
                "S" => Ok((name, AttributeValue::S(value))),
                "N" if value.parse::<f64>().is_ok() => Ok((name, AttributeValue::N(value))),
                _ => Err(BadCursor),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_key_and_refuses_garbage() {
        let key: Item = [
            ("pk".to_string(), AttributeValue::S("P#1".into())),
            ("idleAt".to_string(), AttributeValue::N("17".into())),
        ]
        .into();
        let cursor = Cursor::from_key(Some(&key)).expect("a cursor");
        assert_eq!(Cursor::parse(cursor.as_str()).and_then(|c| c.to_key()).ok(), Some(key));
        assert!(Cursor::parse("not-a-cursor!").is_err());
        assert!(Cursor::from_key(Some(&Item::new())).is_none());
    }
}
