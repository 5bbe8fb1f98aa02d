//! intake's errors, in one place: [`IntakeError`], what every handler of
//! the service returns, mapped exhaustively to an HTTP status and a stable
//! code in the shared shape (`docs/errors.md`); and [`Open311Error`], the
//! same failures in GeoReport v2's wire form (`[{"code", "description"}]`,
//! rendered as JSON or XML by `open311::format`), with the mapping from
//! [`IntakeError`] here too.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use gridwork_domain::report::ValidationError;
use gridwork_platform::ApiError;
use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("report {0} exists with different content")]
    IdConflict(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// A grid worker's report lies outside the area their scope allows.
    #[error("the report lies outside {area}")]
    OutsideArea { area: String, level: &'static str, tolerance_m: f64 },
    /// `received_by` names no centre above where the report lies.
    #[error("received_by {received_by} is no centre above {place}")]
    ReceivedByNotAbovePlace { received_by: String, place: String },
    #[error("wrong username or password")]
    BadCredentials,
    /// A required field of a grant is absent.
    #[error("{0} is required")]
    MissingField(&'static str),
    #[error("unsupported grant_type {0:?}")]
    UnsupportedGrantType(String),
    /// The right password (or a good refresh token) of a deactivated account.
    #[error("the account is deactivated")]
    AccountDeactivated,
    /// A refresh token refused (ADR 0018); `code` says why: `invalid_grant`,
    /// `refresh_token_revoked`, `refresh_token_expired`, `refresh_token_reused`.
    #[error("{message}")]
    RefreshRefused { code: &'static str, message: &'static str },
    /// A spent refresh token used again: its whole family is revoked.
    #[error("a spent refresh token was used again")]
    RefreshReused,
    /// A photo or video over its limit, in bytes.
    #[error("media over {0} bytes")]
    MediaTooLarge(u64),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("the body could not be read: {0}")]
    BadBody(String),
    #[error("the file is empty")]
    EmptyBody,
    /// An error the platform already shaped (a body that is no JSON, a
    /// token refused).
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("storing failed: {0}")]
    Unavailable(String),
    #[error("too many requests; retry in {0} s")]
    RateLimited(u64),
    #[error("too many failed sign-ins; retry in {0} s")]
    SigninThrottled(u64),
    #[error("too many sign-ins at once")]
    SigninBusy,
    #[error("{0}")]
    Internal(String),
}

impl IntakeError {
    /// Seconds a client should wait before retrying (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            IntakeError::RateLimited(secs) | IntakeError::SigninThrottled(secs) => Some(*secs),
            IntakeError::SigninBusy => Some(1),
            _ => None,
        }
    }

    pub fn api(&self) -> ApiError {
        match self {
            IntakeError::Validation(v) => v.clone().into(),
            IntakeError::IdConflict(id) => ApiError::conflict(
                "report_id_conflict",
                format!("report {id} was already submitted with different content; use a new id for a new report"),
                format!("报告编号 {id} 已提交过不同内容；新的报告请使用新编号"),
            )
            .with_field("id"),
            IntakeError::NotFound(what) => ApiError::not_found(what),
            IntakeError::Forbidden(why) => ApiError::forbidden(*why),
            IntakeError::OutsideArea { area, level, tolerance_m } => ApiError::new(
                StatusCode::FORBIDDEN,
                "outside_report_area",
                format!(
                    "the report's location lies outside {area}, the {level} you may report in \
                     (with {tolerance_m} m of GPS tolerance at its edge); check the location, \
                     or leave the report to that place's grid workers"
                ),
                format!("上报位置不在您可上报的区域 {area} 内（边界外 {tolerance_m} 米内视为定位误差），请核对位置"),
            )
            .with_field("location"),
            IntakeError::ReceivedByNotAbovePlace { received_by, place } => ApiError::bad_request(
                "received_by_not_above_place",
                format!(
                    "received_by {received_by} is no comprehensive-management centre above where the report \
                     lies ({place}): name the street, county or city centre that covers the place"
                ),
                format!("受理单位 {received_by} 不是事件所在地（{place}）的上级综治中心"),
            )
            .with_field("received_by"),
            IntakeError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
                "用户名或密码错误",
            ),
            IntakeError::MissingField(field) => {
                ApiError::bad_request("missing_field", format!("{field} is required"), format!("请填写 {field}"))
                    .with_field(*field)
            }
            IntakeError::UnsupportedGrantType(other) => ApiError::bad_request(
                "unsupported_grant_type",
                format!("grant_type {other:?}: use password or refresh_token"),
                "不支持的授权方式",
            )
            .with_field("grant_type"),
            IntakeError::AccountDeactivated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "account_deactivated",
                "this account has been deactivated; ask your administrator",
                "该账号已停用，请联系管理员",
            ),
            IntakeError::RefreshRefused { code, message } => ApiError::unauthorized(code, *message),
            IntakeError::RefreshReused => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; every session of this sign-in is revoked — sign in again",
                "刷新令牌已被使用，本次登录的所有会话已失效，请重新登录",
            ),
            IntakeError::MediaTooLarge(limit) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "media_too_large",
                format!("the file is larger than {limit} bytes"),
                format!("文件超过 {limit} 字节"),
            ),
            IntakeError::UnsupportedMediaType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "photos must be JPEG, PNG, WebP or HEIC; videos MP4 or MOV",
                "照片须为 JPEG、PNG、WebP 或 HEIC，视频须为 MP4 或 MOV",
            ),
            IntakeError::BadBody(e) => ApiError::bad_request("bad_body", e.clone(), "请求体读取失败"),
            IntakeError::EmptyBody => ApiError::bad_request("empty_body", "the file is empty", "文件为空"),
            IntakeError::Api(e) => e.clone(),
            IntakeError::Db(e) => ApiError::unavailable(e),
            IntakeError::Unavailable(e) => ApiError::unavailable(e),
            IntakeError::RateLimited(secs) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this token; retry in {secs} s"),
                format!("请求过于频繁，请 {secs} 秒后重试"),
            ),
            IntakeError::SigninThrottled(secs) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "signin_throttled",
                format!("too many failed sign-ins for this account or from this address; retry in {secs} s"),
                format!("登录失败次数过多，请 {secs} 秒后重试"),
            ),
            IntakeError::SigninBusy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "signin_busy",
                "too many sign-ins at once; retry in a moment",
                "登录请求过多，请稍后重试",
            ),
            IntakeError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl ResponseError for IntakeError {
    fn status_code(&self) -> StatusCode {
        self.api().status
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = self.api().error_response();
        if let Some(secs) = self.retry_after() {
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}

/// A GeoReport v2 error: rendered as `[{"code", "description"}]` (or
/// `<errors><error>…` in XML) with the HTTP status of `code`. Open311's own
/// checks make these directly; anything the report path refuses arrives as
/// an [`IntakeError`] and is mapped below.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Open311Error {
    pub(crate) fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Open311Error { status, description: description.into(), retry_after: None }
    }
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }
    pub(crate) fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, description)
    }
    pub(crate) fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }
}

impl From<DbErr> for Open311Error {
    fn from(e: DbErr) -> Self {
        tracing::warn!(error = %e, "open311: database unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; try again")
    }
}

impl From<IntakeError> for Open311Error {
    fn from(e: IntakeError) -> Self {
        let api = e.api();
        if api.status.is_server_error() {
            tracing::warn!(error = %e, "open311: request not stored");
            return Self::new(api.status, "temporarily unavailable: the request was not stored; try again");
        }
        let description = match api.field.as_deref() {
            Some(f) => format!("{}: {}", open311_field(f), api.message),
            None => api.message,
        };
        let retry_after = match e {
            IntakeError::RateLimited(secs) => Some(secs),
            _ => None,
        };
        Open311Error { status: api.status, description, retry_after }
    }
}

/// gridwork's field names in Open311's words.
fn open311_field(field: &str) -> &str {
    match field {
        "location.lat" => "lat",
        "location.lon" => "long",
        "category" => "service_code",
        "address" => "address_string",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status_and_code() {
        let table: Vec<(IntakeError, u16, &str, Option<&str>)> = vec![
            (IntakeError::IdConflict("r".into()), 409, "report_id_conflict", Some("id")),
            (IntakeError::NotFound("report"), 404, "not_found", None),
            (IntakeError::Forbidden("no"), 403, "forbidden", None),
            (
                IntakeError::OutsideArea { area: "371002003".into(), level: "street", tolerance_m: 200.0 },
                403,
                "outside_report_area",
                Some("location"),
            ),
            (
                IntakeError::ReceivedByNotAbovePlace { received_by: "371003".into(), place: "371002".into() },
                400,
                "received_by_not_above_place",
                Some("received_by"),
            ),
            (IntakeError::BadCredentials, 401, "invalid_credentials", None),
            (IntakeError::MissingField("username"), 400, "missing_field", Some("username")),
            (IntakeError::UnsupportedGrantType("x".into()), 400, "unsupported_grant_type", Some("grant_type")),
            (IntakeError::AccountDeactivated, 401, "account_deactivated", None),
            (
                IntakeError::RefreshRefused { code: "refresh_token_expired", message: "expired" },
                401,
                "refresh_token_expired",
                None,
            ),
            (IntakeError::RefreshReused, 401, "refresh_token_reused", None),
            (IntakeError::MediaTooLarge(10), 413, "media_too_large", None),
            (IntakeError::UnsupportedMediaType, 415, "unsupported_media_type", None),
            (IntakeError::BadBody("cut".into()), 400, "bad_body", None),
            (IntakeError::EmptyBody, 400, "empty_body", None),
            (IntakeError::Unavailable("down".into()), 503, "unavailable", None),
            (IntakeError::RateLimited(7), 429, "rate_limited", None),
            (IntakeError::SigninThrottled(7), 429, "signin_throttled", None),
            (IntakeError::SigninBusy, 503, "signin_busy", None),
        ];
        for (e, status, code, field) in table {
            let api = e.api();
            assert_eq!((api.status.as_u16(), api.code, api.field.as_deref()), (status, code, field), "{e}");
        }
        assert_eq!(IntakeError::RateLimited(7).retry_after(), Some(7));
        assert_eq!(IntakeError::SigninBusy.retry_after(), Some(1));
        assert_eq!(IntakeError::BadCredentials.retry_after(), None);
    }

    #[test]
    fn open311_errors_name_open311_fields_and_hide_server_errors() {
        let v = ValidationError::new("location.lon", "invalid_coordinates", "bad longitude", "经度错误");
        let e = Open311Error::from(IntakeError::Validation(v));
        assert_eq!((e.status, e.description.as_str()), (StatusCode::BAD_REQUEST, "long: bad longitude"));
        let e = Open311Error::from(IntakeError::RateLimited(9));
        assert_eq!((e.status, e.retry_after), (StatusCode::TOO_MANY_REQUESTS, Some(9)));
        let e = Open311Error::from(IntakeError::Unavailable("disk on fire".into()));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.description.contains("fire"), "{}", e.description);
    }
}
