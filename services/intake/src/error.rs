//! intake's errors, mapped exhaustively to HTTP statuses and stable codes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use gridwork_domain::report::ValidationError;
use gridwork_platform::ApiError;

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
            IntakeError::Api(e) => e.clone(),
            IntakeError::Db(e) => ApiError::unavailable(e),
            IntakeError::Unavailable(e) => ApiError::unavailable(e),
            IntakeError::RateLimited(secs) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests from this token; retry in {secs} s"),
                format!("请求过于频繁，请 {secs} 秒后重试"),
            ),
            IntakeError::SigninThrottled(secs) => crate::signin::throttled(*secs),
            IntakeError::SigninBusy => crate::signin::busy(),
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
        let retry = match self {
            IntakeError::RateLimited(secs) | IntakeError::SigninThrottled(secs) => Some(*secs),
            IntakeError::SigninBusy => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
            }
        }
        res
    }
}
