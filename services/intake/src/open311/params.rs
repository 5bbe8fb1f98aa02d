//! Open311's parameters: a query string or a url-encoded form, where a
//! name may repeat, and the API key a request presents.

use actix_web::{web, HttpRequest};

use crate::error::Open311Error;

/// Query or form parameters, in order (a name may repeat).
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn parse(s: &str) -> Result<Self, Open311Error> {
        web::Query::<Vec<(String, String)>>::from_query(s)
            .map(|q| Params(q.into_inner()))
            .map_err(|e| Open311Error::bad_request(format!("malformed parameters: {e}")))
    }

    /// The last non-empty value of `name`, trimmed.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    /// Every value of `name`, comma-separated values split.
    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The key of a request: the `api_key` parameter, or an `X-Api-Key` header
/// (which, unlike a query string, stays out of access logs).
pub(super) fn presented_key<'a>(req: &'a HttpRequest, p: &'a Params) -> Option<&'a str> {
    p.get("api_key").or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
}
