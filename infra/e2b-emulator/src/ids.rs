//! Identifiers in the shapes E2B uses.

const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_alphanumeric(len: usize) -> String {
    (0..len)
        .map(|_| char::from(ALPHANUMERIC[fastrand::usize(..ALPHANUMERIC.len())]))
        .collect()
}

/// Sandbox ids are 20 lowercase alphanumerics, e.g. `i1dv5mc0v2pbke6ndwre`.
pub(crate) fn sandbox_id() -> String {
    random_alphanumeric(20)
}

/// Template (and so snapshot) ids share the sandbox id shape.
pub(crate) fn template_id() -> String {
    random_alphanumeric(20)
}

pub(crate) fn is_template_id_shaped(candidate: &str) -> bool {
    candidate.len() == 20 && candidate.bytes().all(|b| ALPHANUMERIC.contains(&b))
}

pub(crate) fn access_token() -> String {
    format!("ea_{}", random_alphanumeric(40))
}

/// A random (version 4) UUID in its usual hyphenated form.
pub(crate) fn uuid() -> String {
    let mut bytes: [u8; 16] = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = sandbox_id();
        assert!(is_template_id_shaped(&id));
        assert!(!is_template_id_shaped("base"));
        let uuid = uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'4');
        assert_ne!(uuid, super::uuid());
    }
}
