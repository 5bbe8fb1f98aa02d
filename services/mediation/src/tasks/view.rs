//! How a task looks to both the phone and the case worker.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use gridwork_storage::entity::{media, task};
use serde::Serialize;
use utoipa::ToSchema;

use super::{TaskKind, ACKNOWLEDGED, ASSIGNED, CANCELLED, DONE, OPEN};
use crate::error::MediationError;
use crate::repo::tasks::{media_ids, uploaded};
use crate::State;
use gridwork_platform::media::{refs, MediaRef};

/// One step of a task's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskEvent {
    #[schema(schema_with = super::schema::task_status)]
    pub event: &'static str,
    pub at: DateTime<Utc>,
    /// Who: a user id, or `system`.
    #[schema(required)]
    pub by: Option<String>,
    /// Why, for a cancellation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A task as both the phone and the case worker see it: what, by when, its
/// state, the result, and its history. Nobody's personal data but what the
/// case worker wrote and the grid worker reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub case_id: String,
    /// The case's grid when the task was given (its county when the case
    /// lies in no grid).
    pub grid: String,
    #[schema(schema_with = super::schema::task_kind)]
    pub kind: String,
    /// The kind in Chinese: 核查, 回访, 送达 or 协助调解.
    pub kind_zh: &'static str,
    pub instructions: String,
    pub due_at: DateTime<Utc>,
    /// Still open and past its due time.
    pub overdue: bool,
    /// The grid worker; `null`: any grid worker of `grid`, until one
    /// acknowledges or completes it.
    #[schema(required)]
    pub assignee: Option<String>,
    #[schema(schema_with = super::schema::task_status)]
    pub status: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub acked_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub done_at: Option<DateTime<Utc>>,
    /// The grid worker's result note.
    #[schema(required)]
    pub note: Option<String>,
    pub media: Vec<MediaRef>,
    #[schema(required)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// A case worker's id, or `system` when the case was closed or rejected.
    #[schema(required)]
    pub cancelled_by: Option<String>,
    #[schema(required)]
    pub cancel_reason: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub history: Vec<TaskEvent>,
}

/// The task as seen at `now`, with what has been uploaded of its media.
pub fn view(t: &task::Model, uploaded: &HashMap<String, media::Model>, now: DateTime<Utc>) -> TaskView {
    let open = OPEN.contains(&t.status.as_str());
    let media = refs(media_ids(t), uploaded);
    let event = |event, at, by: Option<&String>| TaskEvent { event, at, by: by.cloned(), reason: None };
    let mut history = vec![event(ASSIGNED, t.created_at, Some(&t.created_by))];
    if let Some(at) = t.acked_at {
        history.push(event(ACKNOWLEDGED, at, t.assignee.as_ref()));
    }
    if let Some(at) = t.done_at {
        history.push(event(DONE, at, t.assignee.as_ref()));
    }
    if let Some(at) = t.cancelled_at {
        history.push(TaskEvent { reason: t.cancel_reason.clone(), ..event(CANCELLED, at, t.cancelled_by.as_ref()) });
    }
    TaskView {
        id: t.id.clone(),
        case_id: t.case_id.clone(),
        grid: t.grid.clone(),
        kind: t.kind.clone(),
        kind_zh: TaskKind::parse(&t.kind).map(TaskKind::name_zh).unwrap_or(""),
        instructions: t.instructions.clone(),
        due_at: t.due_at,
        overdue: open && t.due_at <= now,
        assignee: t.assignee.clone(),
        status: t.status.clone(),
        created_by: t.created_by.clone(),
        created_at: t.created_at,
        acked_at: t.acked_at,
        done_at: t.done_at,
        note: t.note.clone(),
        media,
        cancelled_at: t.cancelled_at,
        cancelled_by: t.cancelled_by.clone(),
        cancel_reason: t.cancel_reason.clone(),
        updated_at: t.updated_at,
        history,
    }
}

/// One task's view, now, reading what has been uploaded of its media.
pub async fn one_view(state: &State, t: &task::Model) -> Result<TaskView, MediationError> {
    let up = uploaded(&state.db, std::slice::from_ref(t)).await?;
    Ok(view(t, &up, Utc::now()))
}
