//! A step as written in `UserParameters`: one key naming its kind (`{"template":
//! {...}}`) and, beside it, an optional `when` condition. serde's externally tagged
//! enums allow no sibling key, and `#[serde(flatten)]` would give up
//! `deny_unknown_fields` and the field paths in errors, so the map is read by hand:
//! the kind key's value is handed to [`StepSpec`]'s own deserializer as its variant,
//! which keeps errors at `steps[1].template.files` and the list of known kinds.
//!
//! The JSON Schema is [`StepSpec`]'s, with `when` added to each kind's object.

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::spec::{StepSpec, WhenSpec};

/// One step: its kind with options, and when it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDoc {
    /// The step's kind and options.
    pub kind: StepSpec,
    /// The condition under which it applies (always, without one).
    pub when: Option<WhenSpec>,
}

impl<'de> Deserialize<'de> for StepDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepDocVisitor)
    }
}

struct StepDocVisitor;

impl<'de> Visitor<'de> for StepDocVisitor {
    type Value = StepDoc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step: an object with one kind key such as {\"exclude\": [\"*.map\"]}, and optionally \"when\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StepDoc, A::Error> {
        let (mut kind, mut when) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            if key == "when" {
                if when.is_some() {
                    return Err(de::Error::duplicate_field("when"));
                }
                when = Some(map.next_value::<WhenSpec>()?);
            } else if kind.is_some() {
                return Err(de::Error::custom(format!(
                    "a step has one kind, and `{key}` is a second one: put each step in its own list item"
                )));
            } else {
                kind = Some(map.next_value_seed(KindSeed(key))?);
            }
        }
        let kind = kind.ok_or_else(|| {
            de::Error::custom("a step needs a kind, such as {\"exclude\": [\"*.map\"]}")
        })?;
        Ok(StepDoc { kind, when })
    }
}

/// Deserializes the value of kind key `.0` as that variant of [`StepSpec`].
struct KindSeed(String);

impl<'de> DeserializeSeed<'de> for KindSeed {
    type Value = StepSpec;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StepSpec, D::Error> {
        StepSpec::deserialize(OneVariant {
            kind: self.0,
            value: d,
        })
    }
}

/// An enum made of one variant name and its value's deserializer.
struct OneVariant<D> {
    kind: String,
    value: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for OneVariant<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        v.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        v.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for OneVariant<D> {
    type Error = D::Error;
    type Variant = ValueOf<D>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, ValueOf<D>), D::Error> {
        let name = seed.deserialize(de::value::StringDeserializer::<D::Error>::new(self.kind))?;
        Ok((name, ValueOf(self.value)))
    }
}

/// The value of a newtype variant (every [`StepSpec`] variant is one).
struct ValueOf<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for ValueOf<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        Err(de::Error::custom("expected the step's options"))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("expected the step's options"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("expected the step's options"))
    }
}

impl JsonSchema for StepDoc {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Step".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = StepSpec::json_schema(generator);
        let when = generator.subschema_for::<WhenSpec>();
        let when = serde_json::json!({
            "description": "Apply the step only when this holds (evaluated before data moves).",
            "allOf": [when]
        });
        if let Some(kinds) = schema.get_mut("oneOf").and_then(|k| k.as_array_mut()) {
            for kind in kinds {
                if let Some(props) = kind.get_mut("properties").and_then(|p| p.as_object_mut()) {
                    props.insert("when".into(), when.clone());
                }
            }
        }
        schema
    }
}
