//! Request bodies, read by the handler itself once the caller is
//! authorised and the object is known to be in their view (ADR 0033): a
//! refused caller gets its 401, 403 or 404 whatever it sent, never a 400 or
//! 413 about a body it may not send.

use actix_web::{web, HttpRequest};
use gridwork_platform::Context;
use serde::de::DeserializeOwned;

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

/// A JSON body (empty = `{}`) with the shared codes: `malformed_json`,
/// `unknown_field` and `missing_field` naming the field, `invalid_body`.
pub fn json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, MediationError> {
    if blank(body) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| MediationError::request(gridwork_platform::error::body_error(&e)))
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
    serde_json::from_slice(body).map_err(|e| bad_request("invalid_body", format!("invalid {what}: {e}"), zh))
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
    }

    #[test]
    fn every_fault_is_invalid_body_where_that_is_the_contract() {
        assert_eq!(code(json_or_invalid::<In>(b"{", "request body", "请求体格式错误", true)), ("invalid_body", None));
        assert_eq!(code(json_or_invalid::<In>(b"", "request body", "请求体格式错误", true)), ("ok", None));
        assert_eq!(code(json_or_invalid::<In>(b"", "request body", "请求体格式错误", false)), ("invalid_body", None));
    }
}
