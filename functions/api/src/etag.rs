//! Entity tags for the status route: a hash of the exact JSON answered, so any change a frontend
//! could see (state, version, lastActiveAt, a new idle deadline) changes the tag.

use http::HeaderValue;
use sha2::{Digest, Sha256};

pub fn entity_tag(body: &[u8]) -> HeaderValue {
    let hex: String = Sha256::digest(body)[..12].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `If-None-Match` semantics: a list of tags, weak ones compared weakly, or `*`.
pub fn matches_any(if_none_match: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(list) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = entity_tag(b"{}");
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        let tag = etag.to_str().unwrap().to_string();
        assert!(matches_any(Some(&header(&tag)), &etag));
        assert!(matches_any(Some(&header(&format!("\"x\", W/{tag}"))), &etag));
        assert!(matches_any(Some(&header("*")), &etag));
        assert!(!matches_any(Some(&header("\"other\"")), &etag));
        assert!(!matches_any(None, &etag));
        assert_ne!(entity_tag(b"{}"), entity_tag(b"{ }"));
    }
}
