//! Status of service requests: `GET requests/{id}.{json,xml}` (anyone, by
//! id) and `GET requests.{json,xml}` (by ids, or the integration's own
//! requests with its `api_key`), for reports that came in through Open311
//! only. Never personal data: no parties, no petition matter, no reporter,
//! and status notes are fixed phrases, never a worker's words.

use std::collections::{BTreeSet, HashMap};

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use gridwork_domain::codes;
use gridwork_domain::report::ReportStatus;
use gridwork_storage::entity::{api_key, api_key_report, category, centre, report};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::areas::{jurisdiction, Areas};
use super::documents::{respond, Doc, RequestOut};
use super::format::Format;
use super::keys::authenticate;
use super::params::{presented_key, Params};
use super::MEDIA_LINE;
use crate::error::Open311Error;
use crate::State;

/// The longest `start_date`..`end_date` a listing covers, as the spec says.
const MAX_RANGE_DAYS: i64 = 90;
const MAX_LISTED: u64 = 1000;
const MAX_IDS: usize = 200;

pub(super) async fn one_request(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let (id, format) = match Format::split(&path) {
        Ok(s) => s,
        Err(e) => return e.render(Format::Json),
    };
    respond(
        format,
        async {
            let p = Params::parse(req.query_string())?;
            let juris = jurisdiction(&state, &areas, &p).await?;
            let found = by_ids(&state, &[id.to_owned()], juris.as_deref()).await?;
            if found.is_empty() {
                return Err(Open311Error::not_found(format!("service_request_id {id:?} not found")));
            }
            Ok(Doc::Requests(found))
        }
        .await,
    )
}

pub(super) async fn list_requests(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let format = match Format::parse(&path) {
        Ok(f) => f,
        Err(e) => return e.render(Format::Json),
    };
    respond(format, list(&req, &state, &areas).await)
}

async fn list(req: &HttpRequest, state: &State, areas: &Areas) -> Result<Doc, Open311Error> {
    let p = Params::parse(req.query_string())?;
    let juris = jurisdiction(state, areas, &p).await?;
    let ids = p.list("service_request_id");
    if !ids.is_empty() {
        if ids.len() > MAX_IDS {
            return Err(Open311Error::bad_request(format!("at most {MAX_IDS} service_request_id at once")));
        }
        return Ok(Doc::Requests(by_ids(state, &ids, juris.as_deref()).await?));
    }
    let Some(presented) = presented_key(req, &p) else {
        return Err(Open311Error::forbidden(
            "listing requests needs the integration's api_key and lists its own requests; anyone may look \
             requests up by service_request_id",
        ));
    };
    let key = authenticate(state, Some(presented)).await?;
    let date = |name: &str| -> Result<Option<DateTime<Utc>>, Open311Error> {
        p.get(name)
            .map(|d| {
                DateTime::parse_from_rfc3339(d).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                    Open311Error::bad_request(format!("{name} must be a w3 date-time, e.g. 2026-11-01T00:00:00Z"))
                })
            })
            .transpose()
    };
    let (start, end) = match (date("start_date")?, date("end_date")?) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + Duration::days(MAX_RANGE_DAYS)),
        (None, Some(e)) => (e - Duration::days(MAX_RANGE_DAYS), e),
        (None, None) => {
            let end = Utc::now() + Duration::minutes(1);
            (end - Duration::days(MAX_RANGE_DAYS), end)
        }
    };
    if end < start || end - start > Duration::days(MAX_RANGE_DAYS) {
        return Err(Open311Error::bad_request(format!(
            "start_date..end_date must be in order and span at most {MAX_RANGE_DAYS} days"
        )));
    }
    let statuses = p.list("status");
    if let Some(bad) = statuses.iter().find(|s| !matches!(s.as_str(), "open" | "closed")) {
        return Err(Open311Error::bad_request(format!("status {bad:?}: use open or closed")));
    }
    let codes = p.list("service_code");
    // Every key of the integration: its requests survive a key's rotation.
    let key_ids: Vec<String> = api_key::Entity::find()
        .select_only()
        .column(api_key::Column::Id)
        .filter(api_key::Column::Name.eq(key.name.as_str()))
        .into_tuple()
        .all(&state.db)
        .await?;
    let report_ids: Vec<String> = api_key_report::Entity::find()
        .select_only()
        .column(api_key_report::Column::ReportId)
        .filter(api_key_report::Column::KeyId.is_in(key_ids))
        .filter(api_key_report::Column::CreatedAt.between(start, end))
        .order_by_desc(api_key_report::Column::CreatedAt)
        .limit(MAX_LISTED)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut query = report::Entity::find().filter(report::Column::Id.is_in(report_ids));
    if !codes.is_empty() {
        query = query.filter(report::Column::Category.is_in(codes));
    }
    let rows = query.order_by_desc(report::Column::ReceivedAt).all(&state.db).await?;
    let out = to_requests(state, rows, juris.as_deref()).await?;
    Ok(Doc::Requests(
        out.into_iter().filter(|r| statuses.is_empty() || statuses.iter().any(|s| s == r.status)).collect(),
    ))
}

/// The Open311 requests among `ids` (others, and reports that did not come
/// in through Open311, are not found).
async fn by_ids(state: &State, ids: &[String], juris: Option<&str>) -> Result<Vec<RequestOut>, Open311Error> {
    let ids: Vec<String> = ids.iter().filter_map(|i| Uuid::parse_str(i).ok()).map(|u| u.to_string()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marked: Vec<String> = api_key_report::Entity::find()
        .select_only()
        .column(api_key_report::Column::ReportId)
        .filter(api_key_report::Column::ReportId.is_in(ids))
        .into_tuple()
        .all(&state.db)
        .await?;
    let rows = report::Entity::find().filter(report::Column::Id.is_in(marked)).all(&state.db).await?;
    to_requests(state, rows, juris).await
}

async fn to_requests(
    state: &State,
    rows: Vec<report::Model>,
    juris: Option<&str>,
) -> Result<Vec<RequestOut>, Open311Error> {
    // A report not yet placed is shown whatever the jurisdiction: its
    // location was checked against it when it was posted.
    let rows: Vec<report::Model> = rows
        .into_iter()
        .filter(|r| match (juris, r.grid.as_deref().or(r.centre.as_deref())) {
            (Some(j), Some(place)) => codes::covers(j, place),
            _ => true,
        })
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let names: HashMap<String, String> =
        category::Entity::find().all(&state.db).await?.into_iter().map(|c| (c.code, c.name_zh)).collect();
    let centre_codes: BTreeSet<String> = rows.iter().filter_map(|r| r.centre.clone()).collect();
    let centres: HashMap<String, String> = centre::Entity::find()
        .filter(centre::Column::Code.is_in(centre_codes))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|c| (c.code, c.name))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let status = ReportStatus::parse(&r.status);
            let (description, media_url) = match r.description.rsplit_once(MEDIA_LINE) {
                Some((d, url)) if !url.is_empty() && !url.contains('\n') => (d.to_owned(), Some(url.to_owned())),
                _ => (r.description.clone(), None),
            };
            let agency = r.centre.as_ref().map(|c| {
                let name = centres.get(c).map(String::as_str).unwrap_or("综治中心");
                match &r.grid {
                    Some(g) => format!("{name} ({c}), grid {g}"),
                    None => format!("{name} ({c})"),
                }
            });
            RequestOut {
                service_request_id: r.id.clone(),
                status: if matches!(status, Some(ReportStatus::Closed | ReportStatus::Rejected)) {
                    "closed"
                } else {
                    "open"
                },
                status_notes: status_notes(status, &r),
                service_name: names.get(&r.category).cloned(),
                service_code: r.category.clone(),
                description,
                agency_responsible: agency,
                service_notice: None,
                requested_datetime: w3(r.received_at),
                updated_datetime: w3(r.updated_at),
                expected_datetime: None,
                address: r.address.clone(),
                address_id: None,
                zipcode: None,
                lat: r.lat,
                long: r.lon,
                media_url,
            }
        })
        .collect())
}

fn w3(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Fixed phrases only: the timeline's notes can carry a worker's words.
fn status_notes(status: Option<ReportStatus>, r: &report::Model) -> String {
    match status {
        Some(ReportStatus::Submitted) => "received; being placed in its grid (已受理，正在分派网格)".to_owned(),
        Some(ReportStatus::Assigned) => match &r.grid {
            Some(g) => format!("assigned to grid {g} (已分派至网格)"),
            None => "outside every grid: with the county centre for triage (已转县级综治中心分流)".to_owned(),
        },
        Some(ReportStatus::Queued) => "in the centre's queue (已进入综治中心办理队列)".to_owned(),
        Some(ReportStatus::Accepted) => "accepted by the centre (综治中心已受理)".to_owned(),
        Some(ReportStatus::InProgress) => "being handled (办理中)".to_owned(),
        Some(ReportStatus::Resolved) => "resolved; to be closed (已办结，待结案)".to_owned(),
        Some(ReportStatus::Closed) => "closed (已结案)".to_owned(),
        Some(ReportStatus::Rejected) => "not accepted by the centre (不予受理)".to_owned(),
        None => r.status.clone(),
    }
}
