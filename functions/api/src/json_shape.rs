//! Deserializers that read JSON as JSON Schema (and so the OpenAPI document) defines it, where
//! serde's defaults differ: a struct is an object only (serde also takes an array of its fields),
//! and an integer may be written with a zero fraction (`60.0`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Error, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Number;

/// An optional struct that must be written as a JSON object. The struct reads the object's own
/// entries, so an error inside it still names its path (`retention.keepLast: ...`).
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_option(ObjectOrNull(PhantomData))
}

struct ObjectOrNull<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOrNull<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

/// An optional whole number, `60` or `60.0`.
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(deserializer: D) -> Result<Option<T>, D::Error> {
    let Some(number) = Option::<Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {number}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        n: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        #[serde(default, deserialize_with = "super::object")]
        inner: Option<Inner>,
        #[serde(default, deserialize_with = "super::whole")]
        seconds: Option<u32>,
    }

    #[test]
    fn objects_only_and_whole_numbers_with_or_without_a_fraction() {
        let read = |v| serde_json::from_value::<Outer>(v);
        assert_eq!(
            read(json!({"inner": {"n": 1}, "seconds": 60.0})).unwrap(),
            Outer {
                inner: Some(Inner { n: 1 }),
                seconds: Some(60)
            }
        );
        assert_eq!(
            read(json!({"inner": null})).unwrap(),
            Outer {
                inner: None,
                seconds: None
            }
        );
        assert!(read(json!({"inner": [1]})).is_err());
        for bad in [json!(60.5), json!(-1), json!(5_000_000_000u64), json!("60")] {
            assert!(read(json!({ "seconds": bad })).is_err(), "{bad}");
        }
    }
}
