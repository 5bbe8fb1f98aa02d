//! The access log: one `tracing` span per request (tracing-actix-web), with
//! the default span's fields, except that `http.target` never carries the
//! value of a query parameter that holds a secret (an Open311 `api_key`, a
//! token) or search text (which names people): those values are replaced by
//! `REDACTED` before the span exists, so no subscriber ever sees them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// Query parameters (compared percent-decoded and case-insensitively) whose
/// values stay out of logs.
pub const REDACTED_PARAMETERS: &[&str] = &[
    // secrets
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "secret",
    "client_secret",
    // search text
    "q",
    "query",
    "text",
    "search",
    "keyword",
    "keywords",
];

/// What replaces a redacted value.
pub const REDACTED: &str = "REDACTED";

/// `path?query` with the values of [`REDACTED_PARAMETERS`] replaced.
pub fn redacted_target(path: &str, query: Option<&str>) -> String {
    let Some(query) = query else {
        return path.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (raw_name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            let name = url::form_urlencoded::parse(raw_name.as_bytes())
                .next()
                .map(|(n, _)| n.to_lowercase())
                .unwrap_or_default();
            match value {
                Some(v) if !v.is_empty() && REDACTED_PARAMETERS.contains(&name.as_str()) => {
                    format!("{raw_name}={REDACTED}")
                }
                _ => pair.to_owned(),
            }
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// tracing-actix-web's root span, with [`redacted_target`] as `http.target`.
pub struct RedactingRootSpan;

impl RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let target = redacted_target(request.uri().path(), request.uri().query());
        let route = request.match_pattern().unwrap_or_else(|| "default".to_owned());
        let method = request.method().as_str().to_owned();
        let user_agent = request.headers().get("User-Agent").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
        let request_id = request.extensions().get::<RequestId>().map(|r| r.to_string()).unwrap_or_default();
        let info = request.connection_info();
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = ?request.version(),
            http.scheme = %info.scheme(),
            http.host = %info.host(),
            http.client_ip = %info.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.target = %target,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_search_text_are_redacted_other_parameters_kept() {
        assert_eq!(redacted_target("/a", None), "/a");
        assert_eq!(
            redacted_target("/open311/v2/requests.json", Some("status=open&api_key=gw311_xyz&API%5FKEY=s&q=%E5%BC%A0")),
            "/open311/v2/requests.json?status=open&api_key=REDACTED&API%5FKEY=REDACTED&q=REDACTED"
        );
        assert_eq!(
            redacted_target("/v1/cases", Some("text=abc&limit=5&token=")),
            "/v1/cases?text=REDACTED&limit=5&token="
        );
        assert_eq!(redacted_target("/x", Some("access_token=t&a&b=1")), "/x?access_token=REDACTED&a&b=1");
    }
}
