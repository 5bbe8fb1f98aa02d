//! Request bodies, read by the handler itself once the caller is
//! authorised and the object is known to be in their view (ADR 0033): a
//! refused caller gets its 401, 403 or 404 whatever it sent, never a 400 or
//! 413 about a body it may not send.

use actix_web::{web, HttpRequest};
use gridwork_platform::Context;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{bad_request, MediationError};

/// The process's `http.max_body_bytes`.
pub fn limit(req: &HttpRequest) -> usize {
    req.app_data::<web::Data<Context>>()
        .map_or_else(|| gridwork_platform::config::Http::default().max_body_bytes, |c| c.config.http.max_body_bytes)
}

/// The request body, at most `http.max_body_bytes` (413 beyond, from
/// `Content-Length` before a byte is read).
pub async fn read(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, MediationError> {
    gridwork_platform::body::read(req, payload, limit(req)).await.map_err(MediationError::request)
}

fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Every body of this API is a JSON object (serde would also read a
/// struct from an array of its fields in order: `[null, null]`).
fn require_object(body: &[u8], what: &str, zh: &str) -> Result<(), MediationError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(bad_request("invalid_body", format!("{what} must be a JSON object"), zh)),
    }
}

/// A JSON body (empty = `{}`) with the shared codes: `malformed_json`,
/// `unknown_field` and `missing_field` naming the field, `invalid_body`.
pub fn json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, MediationError> {
    if blank(body) {
        return Ok(T::default());
    }
    gridwork_platform::body::object(body).map_err(MediationError::request)
}

/// A JSON body whose every fault is `invalid_body` (`what`: the English
/// name of the body, `zh`: the Chinese message); empty is `{}` if
/// `empty_is_default`.
pub fn json_or_invalid<T: DeserializeOwned + Default>(
    body: &[u8],
    what: &str,
    zh: &str,
    empty_is_default: bool,
) -> Result<T, MediationError> {
    if empty_is_default && blank(body) {
        return Ok(T::default());
    }
    require_object(body, what, zh)?;
    serde_json::from_slice(body).map_err(|e| bad_request("invalid_body", format!("invalid {what}: {e}"), zh))
}

/// An integer field that also takes the integral floats JSON allows for
/// an integer (`1.0`, which JSON Schema's `integer` includes).
pub fn integral<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    let whole = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    whole
        .and_then(|u| T::try_from(u).ok())
        .ok_or_else(|| D::Error::custom(format!("invalid value: {n}, expected a whole number in range")))
}

/// [`integral`], optional (`null` or absent is `None`).
pub fn integral_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(serde::Deserialize)]
    struct Whole<T: TryFrom<u64>>(#[serde(deserialize_with = "integral")] T);
    Ok(Option::<Whole<T>>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct In {
        #[serde(default)]
        #[allow(dead_code)]
        kind: Option<String>,
    }

    fn code<T: std::fmt::Debug>(r: Result<T, MediationError>) -> (&'static str, Option<String>) {
        match r {
            Ok(_) => ("ok", None),
            Err(e) => {
                let a = e.api();
                (a.code, a.field)
            }
        }
    }

    #[test]
    fn shared_codes_name_the_field() {
        assert_eq!(code(json::<In>(br#"{"kind":"x","colour":"red"}"#)), ("unknown_field", Some("colour".into())));
        assert_eq!(code(json::<In>(b"{")), ("malformed_json", None));
        assert_eq!(code(json::<In>(b"  ")), ("ok", None));
        // A struct is not read from an array of its fields.
        assert_eq!(code(json::<In>(br#"["x"]"#)), ("invalid_body", None));
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats() {
        #[derive(Debug, serde::Deserialize)]
        struct N {
            #[serde(deserialize_with = "integral")]
            n: u8,
            #[serde(default, deserialize_with = "integral_opt")]
            m: Option<u32>,
        }
        let n: N = serde_json::from_str(r#"{"n": 3.0, "m": 7}"#).unwrap();
        assert_eq!((n.n, n.m), (3, Some(7)));
        let n: N = serde_json::from_str(r#"{"n": 3, "m": null}"#).unwrap();
        assert_eq!((n.n, n.m), (3, None));
        assert!(serde_json::from_str::<N>(r#"{"n": 3.5}"#).is_err());
        assert!(serde_json::from_str::<N>(r#"{"n": 256}"#).is_err());
        assert!(serde_json::from_str::<N>(r#"{"n": -1}"#).is_err());
    }

    #[test]
    fn every_fault_is_invalid_body_where_that_is_the_contract() {
        assert_eq!(code(json_or_invalid::<In>(b"{", "request body", "请求体格式错误", true)), ("invalid_body", None));
        assert_eq!(code(json_or_invalid::<In>(b"", "request body", "请求体格式错误", true)), ("ok", None));
        assert_eq!(code(json_or_invalid::<In>(b"", "request body", "请求体格式错误", false)), ("invalid_body", None));
        assert_eq!(
            code(json_or_invalid::<In>(b" [null]", "request body", "请求体格式错误", true)),
            ("invalid_body", None)
        );
    }
}
