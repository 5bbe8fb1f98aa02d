//! Reading reports: one report for those who may see it (ADR 0033), and a
//! reporter's own reports, newest first, with their timelines.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{report, report_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{load_view, view, ReportView};
use crate::error::IntakeError;
use crate::State;

/// Whether a case that names report `id` (its first report, or linked to
/// it) is in `actor`'s view by the domain's one rule for cases.
async fn case_visible(state: &State, actor: &Actor, id: &str) -> Result<bool, sea_orm::DbErr> {
    use gridwork_storage::entity::{case, case_report};
    let linked: Vec<String> = case_report::Entity::find()
        .filter(case_report::Column::ReportId.eq(id))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|l| l.case_id)
        .collect();
    let cases = case::Entity::find()
        .filter(sea_orm::Condition::any().add(case::Column::ReportId.eq(id)).add(case::Column::Id.is_in(linked)))
        .all(&state.db)
        .await?;
    Ok(cases.iter().any(|c| actor.may_see_case(&c.centre, c.channels())))
}

/// One report: its reporter, an admin, a dispatcher whose scope covers its
/// grid, and a mediator who may see its case (by the case's channels).
/// Analysts and other grid workers get 404, as for an unknown id (ADR 0033).
#[utoipa::path(get, path = "/v1/reports/{id}", tag = "reports", operation_id = "get_report",
    params(("id" = Uuid, Path, description = "The report's client id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report, its status and timeline", body = ReportView, links(
            ("case" = (operation_id = "case_detail", parameters(("id" = "$response.body#/case_id")),
                description = "The report's case (a dispatcher's view), once it has one")),
        )),
        (status = 400, description = "The id is not a UUID", body = ApiError),
        Unauthorized,
        (status = 404, description = "No such report visible to the caller", body = ApiError),
        Unavailable,
    ))]
pub async fn get_report(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, IntakeError> {
    let id = path.into_inner().to_string();
    let v = load_view(&state, &id).await?.ok_or(IntakeError::NotFound("report"))?;
    let actor: &Actor = &caller.0;
    let place = v.grid.as_deref().or(v.centre.as_deref());
    let visible = v.reporter == actor.id
        || actor.role == Role::Admin
        || (actor.role == Role::Dispatcher && place.is_some_and(|g| actor.covers(g)))
        || (actor.role == Role::Mediator && case_visible(&state, actor, &id).await?);
    if !visible {
        // Not 403: do not reveal that the id exists.
        return Err(IntakeError::NotFound("report"));
    }
    Ok(HttpResponse::Ok().json(v))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MineQuery {
    /// Page size, 1–200 (default 50).
    #[serde(default)]
    #[param(minimum = 0)]
    pub limit: Option<u64>,
    /// Only reports received before this time (for paging back).
    #[serde(default)]
    pub before: Option<DateTime<Utc>>,
}

/// A page of the caller's reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyReports {
    pub items: Vec<ReportView>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<DateTime<Utc>>,
}

/// The caller's own reports, newest first, each with its timeline.
#[utoipa::path(get, path = "/v1/me/reports", tag = "phone", params(MineQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's reports", body = MyReports),
        (status = 400, description = "Bad query", body = ApiError),
        Unauthorized,
        Unavailable,
    ))]
pub async fn my_reports(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<MineQuery>,
) -> Result<HttpResponse, IntakeError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut query = report::Entity::find().filter(report::Column::Reporter.eq(caller.0.id.as_str()));
    if let Some(b) = q.before {
        query = query.filter(report::Column::ReceivedAt.lt(b));
    }
    let rows = query.order_by_desc(report::Column::ReceivedAt).limit(limit).all(&state.db).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let events = report_event::Entity::find()
        .filter(report_event::Column::ReportId.is_in(ids))
        // In the order the pipeline recorded the steps: events of different
        // topics may reach intake in either order.
        .order_by_asc(report_event::Column::At)
        .order_by_asc(report_event::Column::Id)
        .all(&state.db)
        .await?;
    let items: Vec<ReportView> = rows
        .into_iter()
        .map(|r| {
            let mine = events.iter().filter(|e| e.report_id == r.id).cloned().collect();
            view(r, mine)
        })
        .collect();
    let next_before = if items.len() as u64 == limit { items.last().map(|r| r.received_at) } else { None };
    Ok(HttpResponse::Ok().json(MyReports { items, next_before }))
}
