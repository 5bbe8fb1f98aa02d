//! mediation's one error type. Every handler of the crate answers with a
//! [`MediationError`]; each variant maps to one status and one stable code
//! (docs/errors.md), exhaustively, in [`MediationError::api`]. 5xx bodies
//! carry a reference id only: the cause goes to the log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use gridwork_domain::calendar::ClockError;
use gridwork_domain::report::ValidationError;
use gridwork_domain::TransitionError;
use gridwork_platform::ApiError;

/// A request the client can fix (400): a stable code, the field at fault
/// when there is one, and what to fix in English and Chinese.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub field: Option<String>,
    pub en: String,
    pub zh: String,
}

/// mediation's errors, mapped exhaustively to statuses and stable codes.
#[derive(Debug, thiserror::Error)]
pub enum MediationError {
    /// The case's state machine refused the action (409, 400 or 422).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// An extension that is no valid span (400 `invalid_extension`).
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// 400: a malformed request or an unacceptable value.
    #[error("{}", .0.en)]
    Invalid(Invalid),
    /// 413 `payload_too_large`.
    #[error("the request body is too large")]
    TooLarge,
    /// 403 `forbidden`: the role or scope may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404 `not_found`: no such thing in the caller's view.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 404 `unknown_action`.
    #[error("unknown action {:?}: {}", .0, ACTIONS)]
    UnknownAction(String),
    /// 409 `stale_version`: the case changed since the version the caller saw.
    #[error("the case changed since version {expected} (now {actual})")]
    StaleVersion { expected: i64, actual: i64 },
    /// 409 `stale_version`: the routing rules changed since the edit began.
    #[error("the rules are at version {latest}, not {base}: reload and edit again")]
    StaleRules { latest: u32, base: u32 },
    /// 409 `concurrent_update`: the case was changed concurrently.
    #[error("the case was changed concurrently")]
    Concurrent,
    /// 409 `concurrent_update`: the task was changed concurrently.
    #[error("the task was changed concurrently")]
    TaskRaced,
    /// 409 `claimed_by_another`: the claim lease is held by someone else.
    #[error("the case is claimed by {0}")]
    LeaseHeld(String),
    /// 409 `case_closed`: tasks are given on open cases only (the status).
    #[error("the case is {0}: tasks are given on open cases only")]
    CaseClosed(String),
    /// 409 `task_done`, with the Chinese message of the attempt.
    #[error("the task is already done")]
    TaskDone { zh: &'static str },
    /// 409 `task_cancelled`, with the cancellation's reason.
    #[error("the task was cancelled: {0}")]
    TaskCancelled(String),
    /// 422 `invalid_routing`: every problem of a routing table.
    #[error("the routing table is not usable: {}", .0.join("; "))]
    InvalidRouting(Vec<String>),
    /// 503 `unavailable`: the database did not answer.
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    /// 500 `internal`: a bug or broken data; logged, never disclosed.
    #[error("{0}")]
    Internal(String),
}

/// Every action of `POST /v1/cases/{id}/{action}`.
pub const ACTIONS: &str =
    "accept, reject, claim, release, start, transfer, joint, escalate, suspend, resume, resolve, \
                           verify, close, reopen, callback, request_review, extend or split";

/// 400 with `code`, naming `field`.
pub fn bad(code: &'static str, field: &str, en: impl Into<String>, zh: impl Into<String>) -> MediationError {
    MediationError::Invalid(Invalid { code, field: Some(field.to_owned()), en: en.into(), zh: zh.into() })
}

/// 400 with `code`, naming no field.
pub fn bad_request(code: &'static str, en: impl Into<String>, zh: impl Into<String>) -> MediationError {
    MediationError::Invalid(Invalid { code, field: None, en: en.into(), zh: zh.into() })
}

impl From<ValidationError> for MediationError {
    fn from(e: ValidationError) -> Self {
        MediationError::Invalid(Invalid { code: e.code, field: Some(e.field), en: e.en, zh: e.zh })
    }
}

impl MediationError {
    /// A request error the platform judged (reading or parsing a body):
    /// 413 stays 413, anything else is the client's 400 with its code.
    pub fn request(e: ApiError) -> Self {
        if e.status == StatusCode::PAYLOAD_TOO_LARGE {
            return MediationError::TooLarge;
        }
        MediationError::Invalid(Invalid { code: e.code, field: e.field, en: e.message, zh: e.message_zh })
    }

    /// The shared error shape of this error: status, stable code, messages.
    pub fn api(&self) -> ApiError {
        match self {
            MediationError::Transition(e) => match e {
                TransitionError::IllegalTransition { state, action } => ApiError::conflict(
                    "illegal_transition",
                    e.to_string(),
                    format!("案件当前状态为 {state}，不能执行 {action}"),
                ),
                TransitionError::ClaimedByAnother { .. } => {
                    ApiError::conflict("claimed_by_another", e.to_string(), "案件已被他人签收")
                }
                TransitionError::CallbackAlreadyRecorded => {
                    ApiError::conflict("callback_already_recorded", e.to_string(), "已记录回访")
                }
                TransitionError::MissingReason(_) => {
                    ApiError::bad_request("missing_reason", e.to_string(), "请填写原因").with_field("reason")
                }
                TransitionError::Invalid(_) => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_action",
                    e.to_string(),
                    "该操作的参数不适用于此案件",
                ),
                TransitionError::Text(v) => v.clone().into(),
            },
            MediationError::Clock(e) => {
                ApiError::bad_request("invalid_extension", e.to_string(), "延期时长无效").with_field("extension")
            }
            MediationError::Invalid(i) => {
                let e = ApiError::bad_request(i.code, i.en.clone(), i.zh.clone());
                match &i.field {
                    Some(f) => e.with_field(f.clone()),
                    None => e,
                }
            }
            MediationError::TooLarge => gridwork_platform::body::too_large(),
            MediationError::Forbidden(why) => ApiError::forbidden(*why),
            MediationError::NotFound(what) => ApiError::not_found(what),
            MediationError::UnknownAction(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_action", self.to_string(), "未知的操作")
            }
            MediationError::StaleVersion { .. } => {
                ApiError::conflict("stale_version", self.to_string(), "案件已被更新，请刷新后重试")
                    .with_field("version")
            }
            MediationError::StaleRules { .. } => {
                ApiError::conflict("stale_version", self.to_string(), "路由规则已被他人更新，请刷新后重试")
                    .with_field("base_version")
            }
            MediationError::Concurrent => {
                ApiError::conflict("concurrent_update", self.to_string(), "案件正被他人处理，请刷新后重试")
            }
            MediationError::TaskRaced => {
                ApiError::conflict("concurrent_update", self.to_string(), "任务正被他人处理，请刷新后重试")
            }
            MediationError::LeaseHeld(_) => {
                ApiError::conflict("claimed_by_another", self.to_string(), "案件已被他人签收")
            }
            MediationError::CaseClosed(_) => {
                ApiError::conflict("case_closed", self.to_string(), "案件已结案或不予受理，不能再派发任务")
            }
            MediationError::TaskDone { zh } => ApiError::conflict("task_done", self.to_string(), *zh),
            MediationError::TaskCancelled(_) => ApiError::conflict("task_cancelled", self.to_string(), "任务已撤销"),
            MediationError::InvalidRouting(problems) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_routing", self.to_string(), "路由规则无效")
                    .with_details(problems.clone())
            }
            MediationError::Db(e) => ApiError::unavailable(e),
            MediationError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl ResponseError for MediationError {
    fn status_code(&self) -> StatusCode {
        match self {
            // Known without building the body (which logs 5xx causes).
            MediationError::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            MediationError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            other => other.api().status,
        }
    }
    fn error_response(&self) -> HttpResponse {
        self.api().error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let table: Vec<(MediationError, u16, &str)> = vec![
            (TransitionError::IllegalTransition { state: "closed", action: "claim" }.into(), 409, "illegal_transition"),
            (TransitionError::CallbackAlreadyRecorded.into(), 409, "callback_already_recorded"),
            (TransitionError::MissingReason("a reason").into(), 400, "missing_reason"),
            (TransitionError::Invalid("x".into()).into(), 422, "invalid_action"),
            (bad("invalid_field", "channel", "x", "x"), 400, "invalid_field"),
            (bad_request("invalid_last_event_id", "x", "x"), 400, "invalid_last_event_id"),
            (MediationError::TooLarge, 413, "payload_too_large"),
            (MediationError::Forbidden("no"), 403, "forbidden"),
            (MediationError::NotFound("case"), 404, "not_found"),
            (MediationError::UnknownAction("fly".into()), 404, "unknown_action"),
            (MediationError::StaleVersion { expected: 1, actual: 2 }, 409, "stale_version"),
            (MediationError::StaleRules { latest: 3, base: 2 }, 409, "stale_version"),
            (MediationError::Concurrent, 409, "concurrent_update"),
            (MediationError::TaskRaced, 409, "concurrent_update"),
            (MediationError::LeaseHeld("d".into()), 409, "claimed_by_another"),
            (MediationError::CaseClosed("closed".into()), 409, "case_closed"),
            (MediationError::TaskDone { zh: "任务已完成" }, 409, "task_done"),
            (MediationError::TaskCancelled("why".into()), 409, "task_cancelled"),
            (MediationError::InvalidRouting(vec!["x".into()]), 422, "invalid_routing"),
            (MediationError::Db(sea_orm::DbErr::Custom("pool timed out at 10.0.0.5".into())), 503, "unavailable"),
            (MediationError::Internal("secret table cases_v2".into()), 500, "internal"),
        ];
        for (e, status, code) in table {
            let a = e.api();
            assert_eq!((a.status.as_u16(), a.code), (status, code), "{e:?}");
            assert_eq!(e.status_code().as_u16(), status, "{e:?}");
        }
    }

    #[test]
    fn server_errors_disclose_nothing() {
        for e in [
            MediationError::Db(sea_orm::DbErr::Custom("pool timed out at 10.0.0.5".into())),
            MediationError::Internal("secret table cases_v2".into()),
        ] {
            let a = e.api();
            assert!(!a.message.contains("10.0.0.5") && !a.message.contains("secret"), "{}", a.message);
            assert!(!a.message_zh.contains("10.0.0.5") && !a.message_zh.contains("secret"));
            assert!(a.field.is_none() && a.details.is_empty());
        }
    }

    #[test]
    fn platform_request_errors_keep_their_code() {
        let e = MediationError::request(gridwork_platform::body::too_large());
        assert!(matches!(e, MediationError::TooLarge));
        let parsed = serde_json::from_slice::<serde_json::Value>(b"{")
            .err()
            .map(|e| MediationError::request(gridwork_platform::error::body_error(&e)).api());
        assert_eq!(parsed.map(|a| (a.status.as_u16(), a.code)), Some((400, "malformed_json")));
    }
}
