//! Wire bodies as JavaScript values: serde-wasm-bindgen's JSON-compatible serializer for every
//! scalar and for values carried as they are (`serde_wasm_bindgen::preserve`), objects and
//! arrays built here.
//!
//! Why not serde-wasm-bindgen's own objects: its struct serializer keeps every field name it
//! meets in a hash map, to convert each name to a JS string once. A wire body here has a
//! handful of fields, sent once a call; the map and its hashing weighed ~1.9 KB of the gzipped
//! wasm (BENCHMARKS.md), more than all of this.
//!
//! The shapes are serde-wasm-bindgen's with `json_compatible()`: structs and maps as plain
//! objects, sequences and tuples as arrays, `None` and `()` as `null`, a unit variant as its
//! name, a newtype variant as `{variant: value}`. A newtype struct goes to serde-wasm-bindgen
//! whole, as preserved values must (the wire types have no other); tuple and struct variants,
//! which no wire type has, are refused.

use js_sys::{Array, Object};
use serde::ser::{self, Impossible, Serialize, Serializer};
use serde_wasm_bindgen::Error;
use wasm_bindgen::JsValue;

type Result<T = JsValue> = std::result::Result<T, Error>;

/// The serializer: `value.serialize(Plain(&serde_wasm_bindgen::Serializer::json_compatible()))`.
#[derive(Clone, Copy)]
pub struct Plain<'s>(pub &'s serde_wasm_bindgen::Serializer);

/// A struct's or a map's fields, set on an object as they come.
pub struct Fields<'s> {
    to: Plain<'s>,
    object: JsValue,
    /// A map's key, until its value comes.
    key: JsValue,
}

/// A sequence's or a tuple's items, pushed onto an array.
pub struct Items<'s> {
    to: Plain<'s>,
    array: Array,
}

impl<'s> Plain<'s> {
    fn fields(self) -> Fields<'s> {
        Fields { to: self, object: Object::new().into(), key: JsValue::UNDEFINED }
    }

    fn items(self) -> Items<'s> {
        Items { to: self, array: Array::new() }
    }
}

/// Scalars go to serde-wasm-bindgen as they are.
macro_rules! scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result {
            self.0.$method(v)
        })*
    };
}

impl<'s> Serializer for Plain<'s> {
    type Ok = JsValue;
    type Error = Error;
    type SerializeSeq = Items<'s>;
    type SerializeTuple = Items<'s>;
    type SerializeTupleStruct = Items<'s>;
    type SerializeTupleVariant = Impossible<JsValue, Error>;
    type SerializeMap = Fields<'s>;
    type SerializeStruct = Fields<'s>;
    type SerializeStructVariant = Impossible<JsValue, Error>;

    scalars! {
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_f32: f32, serialize_f64: f64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8],
    }

    // 64-bit integers as numbers when they are exact in one (times, sizes, counts), as
    // serde-wasm-bindgen does; its refusal of a larger one formats the number into its
    // message, which would bring number formatting into the wasm for a case the wire never has.
    fn serialize_i64(self, v: i64) -> Result {
        exact(v as f64, v.unsigned_abs() <= MAX_SAFE_INTEGER)
    }

    fn serialize_u64(self, v: u64) -> Result {
        exact(v as f64, v <= MAX_SAFE_INTEGER)
    }

    fn serialize_none(self) -> Result {
        self.0.serialize_none()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result {
        self.0.serialize_unit()
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result {
        self.0.serialize_unit_struct(name)
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result {
        self.0.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, name: &'static str, value: &T) -> Result {
        self.0.serialize_newtype_struct(name, value)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(self, _name: &'static str, _index: u32, variant: &'static str, value: &T) -> Result {
        let mut fields = self.fields();
        ser::SerializeStruct::serialize_field(&mut fields, variant, value)?;
        Ok(fields.object)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Items<'s>> {
        Ok(self.items())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Items<'s>> {
        Ok(self.items())
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Items<'s>> {
        Ok(self.items())
    }

    fn serialize_tuple_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeTupleVariant> {
        Err(ser::Error::custom("tuple variants are not part of the wire"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Fields<'s>> {
        Ok(self.fields())
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Fields<'s>> {
        Ok(self.fields())
    }

    fn serialize_struct_variant(self, _: &'static str, _: u32, _: &'static str, _: usize) -> Result<Self::SerializeStructVariant> {
        Err(ser::Error::custom("struct variants are not part of the wire"))
    }
}

/// `Number.MAX_SAFE_INTEGER`.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

fn exact(n: f64, safe: bool) -> Result {
    if safe {
        Ok(JsValue::from_f64(n))
    } else {
        Err(ser::Error::custom("a 64-bit integer beyond Number.MAX_SAFE_INTEGER cannot be a JavaScript number"))
    }
}

impl Items<'_> {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.array.push(&value.serialize(self.to)?);
        Ok(())
    }
}

/// Sequences, tuples and tuple structs alike: their items pushed onto an array.
macro_rules! items {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Items<'_> {
            type Ok = JsValue;
            type Error = Error;

            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }

            fn end(self) -> Result {
                Ok(self.array.into())
            }
        }
    )*};
}

items!(SerializeSeq::serialize_element, SerializeTuple::serialize_element, SerializeTupleStruct::serialize_field);

impl ser::SerializeMap for Fields<'_> {
    type Ok = JsValue;
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.key = key.serialize(self.to)?;
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        let key = std::mem::replace(&mut self.key, JsValue::UNDEFINED);
        js_sys::Reflect::set(&self.object, &key, &value.serialize(self.to)?)?;
        Ok(())
    }

    fn end(self) -> Result {
        Ok(self.object)
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = JsValue;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        crate::js::set(&self.object, key, &value.serialize(self.to)?);
        Ok(())
    }

    fn end(self) -> Result {
        Ok(self.object)
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use crate::js::{self, Js};
    use serde::Serialize;
    use skapi_core::wire::{CsrBody, PollBody, PollingResult, QueueExact, Status};
    use skapi_core::{ApiError, ErrorCode};
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// The same value as serde-wasm-bindgen's own JSON-compatible serializer makes it, as JSON.
    fn same_as_serde_wasm_bindgen<T: Serialize>(value: &T) -> String {
        let ours = js::stringify(&js::to_js(value));
        let theirs = js::stringify(&value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap());
        assert_eq!(ours, theirs);
        ours
    }

    #[wasm_bindgen_test]
    fn wire_bodies_are_shaped_as_serde_wasm_bindgen_shapes_them() {
        let data = js::parse(r#"{"n": 1, "list": [1, "a", null, {"deep": true}], "big": 12345678901234567890}"#);
        let body: CsrBody<Js> = CsrBody {
            service: Some("svc".into()),
            url: Some("https://api.example.com/v1".into()),
            secret_name: Some("openai".into()),
            data: Some(Js(data.clone())),
            expires: Some(60.0),
            stream: Some(true),
            ..Default::default()
        };
        let json = same_as_serde_wasm_bindgen(&body);
        assert!(json.contains(r#""secretName":"openai""#) && !json.contains("clientSecretName"), "renamed, and None left out: {json}");
        // The page's value is carried as it is, not copied: the same object.
        let out = js::to_js(&body);
        assert!(js::get(&out, "data") == data);

        let item = PollingResult::<Js> {
            id: "1:a".into(),
            status: Status::Failed,
            status_code: Some(502),
            response_body: None,
            request_body: Some(Js(data)),
            error: Some(ApiError::new(ErrorCode::ThirdPartyError, "bad gateway")),
            created: Some(1),
            updated: None,
            expires: Some(u64::from(u32::MAX) * 4),
            queue_name: None,
            executed: Some(1.5),
            request_text: None,
            response_text: None,
            response_complete_marker: None,
            compact: None,
        };
        let json = same_as_serde_wasm_bindgen(&item);
        assert!(json.contains(r#""status":"failed""#) && json.contains(r#""error":{"code":"THIRD_PARTY_ERROR""#), "{json}");

        let poll = PollBody::<Js> { queue_exact: Some(QueueExact::Flag(true)), limit: Some(10), ..Default::default() };
        assert_eq!(same_as_serde_wasm_bindgen(&poll), r#"{"queue_exact":true,"limit":10}"#);
        assert_eq!(same_as_serde_wasm_bindgen(&vec![(1u8, "a"), (2, "b")]), r#"[[1,"a"],[2,"b"]]"#);
        assert_eq!(same_as_serde_wasm_bindgen(&std::collections::BTreeMap::from([("k", Some(1)), ("z", None)])), r#"{"k":1,"z":null}"#);
    }
}
