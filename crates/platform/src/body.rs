//! Request bodies read by the handler itself, after it authorised the
//! caller.
//!
//! actix runs a handler's extractors together: a `web::Bytes` or
//! `web::Json` argument reads (and buffers) the whole body while the token
//! is still being checked, and the role check in the handler comes last. So
//! every handler that takes a body takes `web::Payload` instead, checks the
//! token (the `Caller` extractor), the role and what scope it can, and only
//! then reads the body with these functions. A refused caller gets its 401
//! or 403 before a byte of the body is read; the unread rest is discarded
//! by the server as it arrives, never buffered.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::{self, ApiError};

/// 413 in the shared error shape.
pub fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large", "请求体过大")
}

/// The body's declared length (`Content-Length`), if it declares one.
pub fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The whole body, at most `limit` bytes: 413 `payload_too_large` beyond,
/// from `Content-Length` before a byte is read when the client declares it.
/// Call it only once the caller is authorised.
pub async fn read(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    if declared_length(req).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => {
            Err(ApiError::bad_request("bad_body", format!("the request body could not be read: {e}"), "请求体读取失败"))
        }
        Err(_) => Err(too_large()),
    }
}

/// A JSON object body with `web::Json`'s checks and error codes (415
/// without a JSON content type; 413 over `http.max_body_bytes`, from
/// `Content-Length` before a byte is read; 400 `malformed_json`, and
/// `invalid_body`, `unknown_field` or `missing_field` naming the field).
/// The body must be a JSON object: serde would also read a struct from an
/// array of its fields in order (`[null, null]`), which no schema of this
/// API allows. Call it only once the caller is authorised.
pub async fn json<T: DeserializeOwned>(req: &HttpRequest, payload: web::Payload) -> Result<T, ApiError> {
    if !is_json(req) {
        return Err(error::json_error(actix_web::error::JsonPayloadError::ContentType));
    }
    let limit = req
        .app_data::<web::Data<crate::Context>>()
        .map_or_else(|| crate::config::Http::default().max_body_bytes, |c| c.config.http.max_body_bytes);
    let body = read(req, payload, limit).await?;
    object(&body)
}

/// `T` from a body that must be a JSON object (see [`json`]).
pub fn object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        // Malformed JSON is still `malformed_json`; well-formed JSON that
        // is not an object is `invalid_body`.
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(|e| error::body_error(&e))?;
        return Err(ApiError::bad_request(
            "invalid_body",
            "the request body must be a JSON object",
            "请求体须为 JSON 对象",
        ));
    }
    serde_json::from_slice(body).map_err(|e| error::body_error(&e))
}

/// What `web::Json` accepts as a JSON content type: `application/json`, or
/// any `+json` type.
fn is_json(req: &HttpRequest) -> bool {
    use actix_web::HttpMessage;
    matches!(req.mime_type(), Ok(Some(m)) if m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON))
}

#[cfg(test)]
mod tests {
    use super::object;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Two {
        #[allow(dead_code)]
        a: Option<u8>,
        #[allow(dead_code)]
        b: Option<u8>,
    }

    #[test]
    fn only_an_object_is_a_body() {
        let code = |body: &str| object::<Two>(body.as_bytes()).err().map(|e| e.code);
        let table = [
            (r#"{"a": 1}"#, None),
            (" \n{}", None),
            // serde alone would read these as the struct's fields in order.
            ("[null, null]", Some("invalid_body")),
            ("[1, 2]", Some("invalid_body")),
            ("7", Some("invalid_body")),
            ("\"text\"", Some("invalid_body")),
            ("[1, ", Some("malformed_json")),
            ("", Some("malformed_json")),
            (r#"{"c": 1}"#, Some("unknown_field")),
        ];
        for (body, want) in table {
            assert_eq!(code(body), want, "{body:?}");
        }
    }
}
