//! The HTTP error shape every service shares:
//! `{"code": "...", "message": "...", "message_zh": "...", "field": "..."}`.
//! `code` is stable and machine-readable; messages are for people. Each
//! service maps its own error type onto this exhaustively; 5xx bodies carry
//! only a reference id, never internals (those go to the log).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "unknown_category", "message": "unknown category \"x\"", "message_zh": "未知的事件类别", "field": "category"}))]
pub struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
    pub status: StatusCode,
    /// Stable, machine-readable.
    #[schema(value_type = String)]
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every problem, when there are several (e.g. a grid import's findings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        ApiError { status, code, message: en.into(), message_zh: zh.into(), field: None, details: Vec::new() }
    }

    pub fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn bad_request(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, en, zh)
    }

    pub fn unauthorized(code: &'static str, en: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, en, "身份验证失败")
    }

    pub fn forbidden(en: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", en, "无权访问")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"), "未找到")
    }

    pub fn conflict(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, en, zh)
    }

    /// A 500 whose cause is logged under a reference id and not disclosed.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        let reference = Uuid::new_v4();
        tracing::error!(%reference, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error (reference {reference})"),
            format!("服务器内部错误（参考号 {reference}）"),
        )
    }

    /// 503 when a dependency is down.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        let reference = Uuid::new_v4();
        tracing::error!(%reference, error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("temporarily unavailable, retry later (reference {reference})"),
            format!("服务暂不可用，请稍后重试（参考号 {reference}）"),
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self)
    }
}

impl From<gridwork_domain::report::ValidationError> for ApiError {
    fn from(e: gridwork_domain::report::ValidationError) -> Self {
        ApiError::bad_request(e.code, e.en, e.zh).with_field(e.field)
    }
}

/// Maps actix's JSON body errors to our shape: malformed JSON, wrong types,
/// unknown or missing fields are 400; oversized bodies 413.
pub fn json_error(err: actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as J;
    match &err {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
            "请求体过大",
        ),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
            "请以 application/json 格式提交",
        ),
        J::Deserialize(e) => {
            if e.is_syntax() || e.is_eof() {
                return ApiError::bad_request("malformed_json", format!("invalid request body: {e}"), "JSON 格式错误");
            }
            field_error(&e.to_string(), "invalid_body", "请求字段错误", "request body")
        }
        _ => ApiError::bad_request("invalid_body", format!("invalid request body: {err}"), "请求体无法读取"),
    }
}

pub fn query_error(err: actix_web::error::QueryPayloadError) -> ApiError {
    let msg = match &err {
        actix_web::error::QueryPayloadError::Deserialize(e) => e.to_string(),
        _ => err.to_string(),
    };
    field_error(&msg, "invalid_query", "查询参数错误", "query string")
}

/// A JSON body a handler parsed itself (`serde_json::from_slice`), mapped
/// as the `web::Json` extractor's errors are.
pub fn body_error(e: &serde_json::Error) -> ApiError {
    if e.is_syntax() || e.is_eof() {
        return ApiError::bad_request("malformed_json", format!("invalid request body: {e}"), "JSON 格式错误");
    }
    field_error(&e.to_string(), "invalid_body", "请求字段错误", "request body")
}

/// serde's "unknown field `x`" and "missing field `x`" as their own codes,
/// naming the field; anything else (a wrong type, say) as `code`.
fn field_error(msg: &str, code: &'static str, zh: &str, what: &str) -> ApiError {
    let named = |prefix: &str| msg.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned);
    if let Some(field) = named("unknown field `") {
        ApiError::bad_request(
            "unknown_field",
            format!("unknown field {field:?} in the {what}: {msg}"),
            format!("不认识的字段 {field}"),
        )
        .with_field(field)
    } else if let Some(field) = named("missing field `") {
        ApiError::bad_request(
            "missing_field",
            format!("{field} is required in the {what}"),
            format!("缺少必填字段 {field}"),
        )
        .with_field(field)
    } else {
        ApiError::bad_request(code, format!("invalid {what}: {msg}"), zh)
    }
}

pub fn path_error(err: actix_web::error::PathError) -> ApiError {
    ApiError::bad_request("invalid_path", format!("invalid path: {err}"), "路径参数错误")
}

impl std::error::Error for ApiError {}

/// The error answers operations share, each one status in the shared shape
/// ([`ApiError`]), for `#[utoipa::path(responses(...))]`: an operation
/// lists the ones it can give (`responses((status = 200, body = X),
/// BadRequest, Unauthorized, Forbidden, Unavailable)`) rather than
/// repeating their descriptions. What is particular to one operation (a
/// 404 for its object, a 409, a 422) stays a tuple of its own.
pub mod responses {
    use super::ApiError;

    /// 400.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400, description = "Invalid request (query, path or body): `code` says what, `field` where")]
    pub struct BadRequest(pub ApiError);

    /// 401.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401, description = "No token, or one that is malformed, expired, revoked or not ours")]
    pub struct Unauthorized(pub ApiError);

    /// 403.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 403,
        description = "The token's role may not do this, or the jurisdiction asked for \
        is outside the token's scope"
    )]
    pub struct Forbidden(pub ApiError);

    /// 404.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, description = "No such object, or none the caller may see (it is not revealed which)")]
    pub struct NotFound(pub ApiError);

    /// 409.
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 409,
        description = "The object's state does not allow this (`code` says why), or the caller's view of it \
        is stale: reload and try again"
    )]
    pub struct Conflict(pub ApiError);

    /// 413.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413, description = "The request body is too large")]
    pub struct PayloadTooLarge(pub ApiError);

    /// 422.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 422, description = "Well-formed, but not applicable here (`code` and `details` say why)")]
    pub struct Unprocessable(pub ApiError);

    /// 503.
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503, description = "A dependency (database, event log, cache) is unavailable; retry later")]
    pub struct Unavailable(pub ApiError);
}
