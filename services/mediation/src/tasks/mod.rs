//! Tasks for grid workers (网格员任务), ADR 0021: a dispatcher or mediator
//! working a case asks the grid worker(s) of the case's grid to go and do
//! something — verify on site (核查), visit again (回访), deliver a notice
//! (送达), assist a mediation (协助调解) — with instructions and a due time;
//! the worker's phone lists, acknowledges and completes them.
//!
//! Tasks live in their own table beside the case: they never change the
//! case's state and are not lifecycle events (no timeline rows, no Kafka).
//! A task given to nobody in particular belongs to the grid workers of the
//! case's grid until one of them acknowledges or completes it. Open tasks of
//! a case that has been closed or rejected are cancelled by the system the
//! next time anyone reads or works them.
//!
//! One job per module: the case worker's endpoints ([`case_worker`]), the
//! phone's ([`phone`]), how a task looks ([`view`]) and its OpenAPI schema
//! pieces ([`schema`]).

use gridwork_storage::entity::{case, task};

use crate::error::{bad, MediationError};
use crate::State;

pub mod case_worker;
pub mod phone;
pub mod schema;
pub mod view;

pub use crate::repo::tasks::{ACKNOWLEDGED, ASSIGNED, CANCELLED, DONE, OPEN};
pub use gridwork_domain::report::is_media_id;

/// What a task asks the grid worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// 核查: check on site what was reported or what was done.
    Verification,
    /// 回访: visit the parties again.
    FollowUp,
    /// 送达: deliver a notice or document.
    Delivery,
    /// 协助调解: help the mediator on site.
    AssistMediation,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] =
        [TaskKind::Verification, TaskKind::FollowUp, TaskKind::Delivery, TaskKind::AssistMediation];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Verification => "verification",
            TaskKind::FollowUp => "follow_up",
            TaskKind::Delivery => "delivery",
            TaskKind::AssistMediation => "assist_mediation",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            TaskKind::Verification => "核查",
            TaskKind::FollowUp => "回访",
            TaskKind::Delivery => "送达",
            TaskKind::AssistMediation => "协助调解",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Longest instructions, result note or cancel reason, in characters.
pub(crate) const MAX_TEXT: usize = 2000;
pub(crate) const MAX_MEDIA: usize = 20;
/// Longest user id an assignee may name, in characters.
pub(crate) const MAX_USER_ID: usize = 256;
/// How long a done or cancelled task stays on the phone's list, in days.
pub(crate) const RECENT_DAYS: i64 = 7;
pub(crate) const MAX_LIST: u64 = 200;

/// A required text field, trimmed, at most [`MAX_TEXT`] characters, with
/// no control characters but tabs and line breaks (PostgreSQL cannot store
/// a NUL byte in text).
pub(crate) fn required_text(field: &str, value: Option<&str>, en: &str, zh: &str) -> Result<String, MediationError> {
    let t = value.map(str::trim).unwrap_or("");
    if t.is_empty() {
        return Err(bad("missing_field", field, format!("{en} must not be empty"), format!("请填写{zh}")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(bad(
            "too_long",
            field,
            format!("{en} is longer than {MAX_TEXT} characters"),
            format!("{zh}不能超过 {MAX_TEXT} 字"),
        ));
    }
    gridwork_domain::report::check_text(field, t, MAX_TEXT)?;
    Ok(t.to_owned())
}

/// The task `id`, or 404.
pub(crate) async fn load(state: &State, id: &str) -> Result<task::Model, MediationError> {
    crate::repo::tasks::find(&state.db, id).await?.ok_or(MediationError::NotFound("task"))
}

/// Where a case is, for its tasks: its grid, or its county when it fell in
/// no grid.
pub(crate) fn place(m: &case::Model) -> &str {
    if m.grid.is_empty() {
        &m.county
    } else {
        &m.grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_media_ids() {
        for k in TaskKind::ALL {
            assert_eq!(TaskKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TaskKind::parse("核查"), None);
        assert!(is_media_id(&"ab".repeat(32)));
        assert!(!is_media_id(&"AB".repeat(32)));
        assert!(!is_media_id("abc"));
    }

    #[test]
    fn free_text_is_trimmed_and_checked() {
        let code = |v: &str| match required_text("note", Some(v), "the note", "办理结果") {
            Ok(t) => t,
            Err(e) => {
                let a = e.api();
                format!("{} {}", a.code, a.field.unwrap_or_default())
            }
        };
        assert_eq!(code("  已送达\n签收人：李四 "), "已送达\n签收人：李四");
        assert_eq!(code(" "), "missing_field note");
        assert_eq!(code("a\0b"), "invalid_characters note", "PostgreSQL cannot store a NUL byte");
        assert_eq!(code(&"字".repeat(MAX_TEXT + 1)), "too_long note");
    }
}
