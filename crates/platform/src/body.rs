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

/// A JSON body with `web::Json`'s checks and error codes (415 without a JSON
/// content type; 413 over `http.max_body_bytes`, from `Content-Length`
/// before a byte is read; 400 for malformed JSON, wrong types, unknown or
/// missing fields). Call it only once the caller is authorised.
pub async fn json<T: DeserializeOwned>(req: &HttpRequest, payload: web::Payload) -> Result<T, ApiError> {
    let limit = req
        .app_data::<web::Data<crate::Context>>()
        .map_or_else(|| crate::config::Http::default().max_body_bytes, |c| c.config.http.max_body_bytes);
    let mut payload = payload.into_inner();
    web::JsonBody::<T>::new(req, &mut payload, None, true).limit(limit).await.map_err(error::json_error)
}
