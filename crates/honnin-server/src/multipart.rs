//! A multipart body as the fields of a request type: text parts are JSON values (as in
//! a JSON body), file parts reach [`ImageBytes`](crate::extract::ImageBytes) as their
//! raw bytes — never base64-encoded and decoded again.
//!
//! [`deserialize`] runs the request type's own `Deserialize` over the parts, so a
//! multipart request is checked exactly as a JSON one (unknown fields, types, required
//! members), with the same `invalid request: …` messages.

use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, Visitor};
use serde::Deserializer;

/// One part of a multipart body.
pub(crate) enum Part {
    /// A text part, read as JSON where it parses (`5`, `true`, `{…}`), else as a string.
    Json(serde_json::Value),
    /// A file part: the image's bytes, presented as `{ "bytes": <bytes> }`.
    File(Vec<u8>),
}

/// Deserializes `T` from named parts (later parts of the same name replace earlier ones,
/// as in the JSON object the parts stand for).
pub(crate) fn deserialize<T: DeserializeOwned>(
    parts: Vec<(String, Part)>,
) -> Result<T, serde_json::Error> {
    let mut named: Vec<(String, Part)> = Vec::with_capacity(parts.len());
    for (name, part) in parts {
        named.retain(|(n, _)| *n != name);
        named.push((name, part));
    }
    T::deserialize(de::value::MapDeserializer::new(named.into_iter()))
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for Part {
    type Deserializer = Part;

    fn into_deserializer(self) -> Part {
        self
    }
}

/// Forwards each `deserialize_*` to the JSON value, or presents a file as its map.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, serde_json::Error> {
                match self {
                    Part::Json(v) => v.$method($($arg,)* visitor),
                    Part::File(bytes) => visitor.visit_map(FileMap(Some(bytes))),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Part {
    type Error = serde_json::Error;

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self {
            Part::Json(v) => v.deserialize_option(visitor),
            file @ Part::File(_) => visitor.visit_some(file),
        }
    }

    forward! {
        deserialize_any()
        deserialize_bool()
        deserialize_i8()
        deserialize_i16()
        deserialize_i32()
        deserialize_i64()
        deserialize_u8()
        deserialize_u16()
        deserialize_u32()
        deserialize_u64()
        deserialize_f32()
        deserialize_f64()
        deserialize_char()
        deserialize_str()
        deserialize_string()
        deserialize_bytes()
        deserialize_byte_buf()
        deserialize_unit()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_seq()
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_map()
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
        deserialize_identifier()
        deserialize_ignored_any()
    }
}

/// A file part as the one-entry map `{ "bytes": <bytes> }`.
struct FileMap(Option<Vec<u8>>);

impl<'de> MapAccess<'de> for FileMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        if self.0.is_none() {
            return Ok(None);
        }
        seed.deserialize(de::value::StrDeserializer::<serde_json::Error>::new(
            "bytes",
        ))
        .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let bytes = self
            .0
            .take()
            .ok_or_else(|| de::Error::custom("a file part has one value"))?;
        seed.deserialize(OwnedBytes(bytes))
    }
}

/// Bytes handed over by value (`visit_byte_buf`), so the image is not copied.
struct OwnedBytes(Vec<u8>);

impl<'de> Deserializer<'de> for OwnedBytes {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_byte_buf(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Whatever arrives for an image: text (JSON) or bytes (a file part).
    #[derive(Debug, PartialEq)]
    enum Got {
        Text(String),
        Bytes(Vec<u8>),
    }

    impl<'de> Deserialize<'de> for Got {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Got;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("text or bytes")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Got, E> {
                    Ok(Got::Text(v.into()))
                }
                fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Got, E> {
                    Ok(Got::Bytes(v))
                }
            }
            d.deserialize_any(V)
        }
    }

    #[derive(Debug, Deserialize)]
    struct Image {
        bytes: Got,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Req {
        image: Image,
        max_faces: Option<u32>,
        external_image_id: Option<String>,
    }

    #[test]
    fn a_file_part_arrives_as_its_bytes_and_text_parts_as_json() {
        let r: Req = deserialize(vec![
            ("image".into(), Part::File(vec![0xff, 0xd8, 0x00])),
            ("maxFaces".into(), Part::Json(serde_json::json!(5))),
            (
                "externalImageId".into(),
                Part::Json(serde_json::json!("42")),
            ),
        ])
        .unwrap();
        assert_eq!(r.image.bytes, Got::Bytes(vec![0xff, 0xd8, 0x00]));
        assert_eq!(r.max_faces, Some(5));
        assert_eq!(r.external_image_id.as_deref(), Some("42"));
    }

    #[test]
    fn multipart_is_checked_as_json_is() {
        let unknown = deserialize::<Req>(vec![
            ("image".into(), Part::File(vec![1])),
            ("colour".into(), Part::Json(serde_json::json!("red"))),
        ])
        .unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `colour`"),
            "{unknown}"
        );
        let missing = deserialize::<Req>(vec![]).unwrap_err();
        assert!(
            missing.to_string().contains("missing field `image`"),
            "{missing}"
        );
        let wrong = deserialize::<Req>(vec![
            ("image".into(), Part::File(vec![1])),
            ("maxFaces".into(), Part::Json(serde_json::json!("many"))),
        ])
        .unwrap_err();
        assert!(wrong.to_string().contains("invalid type"), "{wrong}");
    }
}
