//! Refusing a YAML mapping that repeats a key. serde_norway keeps the last value silently when
//! the mapping becomes a map (`networks`, `endpoints`, `containers`), and reports a repeated
//! struct field at the start of its mapping; this pass walks the whole document first and
//! fails on the repeated key itself, so the error's line is the key's.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

/// Any YAML document whose mappings never repeat a key.
pub struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyValue)
    }
}

struct AnyValue;

impl<'de> Visitor<'de> for AnyValue {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_none<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NoDuplicates, D::Error> {
        NoDuplicates::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = BTreeSet::new();
        while map.next_key_seed(Key(&mut seen))?.is_some() {
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }

    /// A tagged value (`!tag x`): its content is checked like any other.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<NoDuplicates, A::Error> {
        let (_, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<NoDuplicates>(variant)
    }
}

/// A mapping key, checked against the keys seen before it in the same mapping. The check
/// happens inside the key's own deserialization so that serde_norway reports the key's line.
struct Key<'a>(&'a mut BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Key<'_> {
    fn insert<E: de::Error>(self, key: String) -> Result<(), E> {
        if self.0.contains(&key) {
            return Err(E::custom(format!(
                "key {key:?} is given twice in this mapping (each key may appear once)"
            )));
        }
        self.0.insert(key);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plain mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.insert(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.insert(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.insert(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.insert(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.insert(v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.insert("null".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Result<(), (Option<usize>, String)> {
        serde_norway::from_str::<NoDuplicates>(src)
            .map(drop)
            .map_err(|e| (e.location().map(|l| l.line()), e.to_string()))
    }

    #[test]
    fn a_repeated_key_is_refused_at_its_own_line_at_every_level() {
        let cases = [
            ("name: t\nname: u\n", 2, "\"name\""),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n  lan:\n    subnets: [10.1.0.0/24]\n",
                5,
                "\"lan\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    subnets: [10.1.0.0/24]\n",
                5,
                "\"subnets\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: {}\n      red: { ip: [10.0.0.5] }\n",
                7,
                "\"red\"",
            ),
            (
                "name: t\nnetworks:\n  lan:\n    subnets: [10.0.0.0/24]\n    endpoints:\n      red: { ip: [10.0.0.4], ip: [10.0.0.5] }\n",
                6,
                "\"ip\"",
            ),
            (
                "name: t\nlinks:\n  - a: { netns: x }\n    b: { netns: y }\n    a: { netns: z }\n",
                5,
                "\"a\"",
            ),
            (
                "name: t\ncontainers:\n  api: { command: [sleep, infinity] }\n  api: { command: [true] }\n",
                4,
                "\"api\"",
            ),
        ];
        for (src, line, key) in cases {
            let (at, msg) = check(src).unwrap_err();
            assert_eq!(at, Some(line), "{src}: {msg}");
            assert!(msg.contains(key) && msg.contains("given twice"), "{msg}");
        }
    }

    #[test]
    fn the_same_key_in_different_mappings_is_fine() {
        check("name: t\nnetworks:\n  a: { subnets: [10.0.0.0/24] }\n  b: { subnets: [10.1.0.0/24] }\nlinks:\n  - { a: { netns: x }, b: { netns: y } }\n  - { a: { netns: x }, b: { netns: y } }\n")
            .unwrap();
    }
}
