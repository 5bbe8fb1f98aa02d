//! `GET /v1/cases/{id}`: the case, its report, linked reports, supervision
//! notices and its timeline.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{case_report, report_media_ids, view, CaseReport, CaseView};
use crate::access;
use crate::error::MediationError;
use crate::repo::{self, cases as repo_cases};
use crate::State;

/// A further report of the same incident, linked to the case.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedReport {
    #[schema(format = Uuid)]
    pub report_id: String,
    pub linked_at: DateTime<Utc>,
    /// Who linked it: `system` (same place and category within the window).
    pub linked_by: String,
    /// Metres from the case's first report.
    pub distance_m: f64,
    /// The case it was split off into, if a dispatcher split it.
    pub split_case_id: Option<String>,
    /// `null` if the report is gone.
    #[schema(required)]
    pub report: Option<CaseReport>,
}

/// A supervision notice (督办) raised on the case.
#[derive(Debug, Serialize, ToSchema)]
pub struct SupervisionNotice {
    /// The clock it watches: `close_out` or `acceptance`.
    pub clock: String,
    /// `near_due` or `overdue`.
    pub threshold: String,
    pub due_at: DateTime<Utc>,
    pub raised_at: DateTime<Utc>,
}

/// One step of the case's life.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseTimelineEntry {
    /// Its position in the timeline table: the live stream's event id.
    pub seq: i64,
    /// The case-lifecycle event's id on the topic.
    pub event_id: String,
    /// What happened (`created`, `claimed`, `transferred`, …).
    pub kind: String,
    /// The case's status after it.
    #[schema(schema_with = crate::schema::case_status)]
    pub status: String,
    /// Who did it (`system` for the pipeline and the scheduler).
    pub actor: String,
    pub actor_role: String,
    /// Why, in the actor's words or the system's.
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The case's version after it.
    pub version: i64,
    /// The case's queue after it.
    pub centre: String,
    #[schema(schema_with = crate::schema::channel)]
    pub channel: String,
}

/// Body of `GET /v1/cases/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub case: CaseView,
    /// The report that opened the case (`null` if it is gone).
    #[schema(required)]
    pub report: Option<CaseReport>,
    pub linked_reports: Vec<LinkedReport>,
    pub supervision: Vec<SupervisionNotice>,
    /// Oldest first.
    pub timeline: Vec<CaseTimelineEntry>,
}

/// `GET /v1/cases/{id}`: the case with its report (parties masked), linked
/// reports, supervision notices and timeline. A case outside the caller's
/// view is 404, like one that does not exist.
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases", operation_id = "case_detail",
    params(("id" = Uuid, Path, description = "The case")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The case", body = CaseDetail, links(
            ("claim" = (operation_id = "case_action",
                parameters(("id" = "$response.body#/id"), ("action" = "claim")),
                description = "Claim the case (签收)")),
            ("parties" = (operation_id = "reveal_parties", parameters(("id" = "$response.body#/id")),
                description = "See the parties in full, with a reason (audited)")),
            ("tasks" = (operation_id = "case_tasks", parameters(("id" = "$response.body#/id")),
                description = "The case's tasks for grid workers")),
        )),
        BadRequest, Unauthorized, Forbidden, NotFound, Unavailable,
    ))]
pub async fn detail(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let id = path.into_inner().to_string();
    // 404, not 403, for a case out of view: do not reveal that it exists.
    let m = access::visible(&actor, repo_cases::find(&state.db, &id).await?)?;
    let timeline = repo_cases::timeline(&state.db, &id).await?;
    let rep = repo_cases::report(&state.db, &m.report_id).await?;
    let links = repo_cases::links(&state.db, &id).await?;
    let mut linked = Vec::with_capacity(links.len());
    for l in links {
        let r = repo_cases::report(&state.db, &l.report_id).await?;
        linked.push((l, r));
    }
    // One query for the media of every report shown.
    let ids = rep.iter().chain(linked.iter().filter_map(|(_, r)| r.as_ref())).flat_map(report_media_ids).collect();
    let uploaded = repo::media::uploaded(&state.db, ids).await?;
    let mut linked_reports = Vec::with_capacity(linked.len());
    for (l, r) in linked {
        linked_reports.push(LinkedReport {
            report: r.map(|r| case_report(&state, r, &uploaded)),
            report_id: l.report_id,
            linked_at: l.linked_at,
            linked_by: l.linked_by,
            distance_m: l.distance_m,
            split_case_id: l.split_case_id,
        });
    }
    let supervision = repo_cases::notices(&state.db, &id)
        .await?
        .into_iter()
        .map(|s| SupervisionNotice { clock: s.clock, threshold: s.threshold, due_at: s.due_at, raised_at: s.raised_at })
        .collect();
    let timeline = timeline
        .into_iter()
        .map(|e| CaseTimelineEntry {
            reason: repo::timeline_reason(&state.keyring, &e),
            seq: e.id,
            event_id: e.event_id,
            kind: e.kind,
            status: e.status,
            actor: e.actor_id,
            actor_role: e.actor_role,
            at: e.at,
            version: e.version,
            centre: e.centre,
            channel: e.channel,
        })
        .collect();
    Ok(HttpResponse::Ok().json(CaseDetail {
        case: view(m, Utc::now()),
        report: rep.map(|r| case_report(&state, r, &uploaded)),
        linked_reports,
        supervision,
        timeline,
    }))
}
