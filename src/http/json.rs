//! JSON as grpc-gateway's protojson reads and writes it, where serde_json
//! differs: a key given twice is an error, every field of a reply is
//! present (`null` for a message field that is not set), and a whole
//! floating-point number is written without a fraction (`0`, not `0.0`).

use std::fmt;

use prost_reflect::{Kind, MessageDescriptor, ReflectMessage, SerializeOptions};
use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Which field names JSON answers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonNames {
    /// `createdAt` (proto3 JSON default; seed 001).
    Camel,
    /// `created_at` (seeds 000, 002, 004).
    Proto,
}

/// How replies are written in the JSON mapping: every field, named as
/// `names` says.
pub fn json_options(names: JsonNames) -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(names == JsonNames::Proto)
        .skip_default_fields(false)
}

/// How the error of a key given twice begins.
pub const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value whose objects name each key once.
pub struct Strict(pub Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "{DUPLICATE_KEY} \"{}\"",
                    crate::domain::excerpt(&key)
                )));
            }
            let Strict(value) = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// `message`'s reply as grpc-gateway writes it with its default marshaler
/// (protojson, `EmitUnpopulated`): the JSON mapping of every field.
pub fn reply(
    message: &prost_reflect::DynamicMessage,
    options: &SerializeOptions,
    proto_names: bool,
) -> Result<Value, serde_json::Error> {
    let mut json = message.serialize_with_options(serde_json::value::Serializer, options)?;
    complete(&mut json, &message.descriptor(), proto_names);
    Ok(json)
}

/// Adds `null` for every message field `json` leaves out and writes whole
/// doubles as integers, at every depth of `descriptor`'s message.
fn complete(json: &mut Value, descriptor: &MessageDescriptor, proto_names: bool) {
    let Value::Object(fields) = json else {
        return;
    };
    for field in descriptor.fields() {
        let name = if proto_names {
            field.name()
        } else {
            field.json_name()
        };
        // protojson leaves an unset member of a oneof out.
        if field.containing_oneof().is_some() && !fields.contains_key(name) {
            continue;
        }
        let value = fields.entry(name.to_owned()).or_insert(Value::Null);
        match field.kind() {
            Kind::Message(inner) if !inner.full_name().starts_with("google.protobuf.") => {
                if field.is_map() {
                    continue;
                }
                match value {
                    Value::Array(items) => {
                        for item in items {
                            complete(item, &inner, proto_names);
                        }
                    }
                    object => complete(object, &inner, proto_names),
                }
            }
            Kind::Double | Kind::Float => match value {
                Value::Array(items) => items.iter_mut().for_each(whole_number),
                number => whole_number(number),
            },
            _ => {}
        }
    }
}

/// `0.0` as protojson writes it, `0`: Go's shortest form has no fraction
/// for a whole number (up to 1e21, where it switches to an exponent).
fn whole_number(value: &mut Value) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Value::Number(number) = value
        && let Some(float) = number.as_f64()
        && number.is_f64()
        && float.fract() == 0.0
        && float.abs() < EXACT
    {
        *value = Value::Number((float as i64).into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        assert!(serde_json::from_str::<Strict>(r#"{"a": 1, "b": {"c": 1}}"#).is_ok());
        for body in [r#"{"a": 1, "a": 2}"#, r#"{"b": [{"c": 1, "c": 1}]}"#] {
            let error = serde_json::from_str::<Strict>(body).err().expect(body);
            assert!(error.to_string().contains("duplicate key"), "{error}");
        }
    }

    #[test]
    fn whole_doubles_have_no_fraction() {
        for (given, written) in [(0.0, "0"), (12.0, "12"), (1.5, "1.5"), (-3.0, "-3")] {
            let mut value = serde_json::json!(given);
            whole_number(&mut value);
            assert_eq!(value.to_string(), written);
        }
    }
}
