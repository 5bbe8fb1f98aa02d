//! `POST /v1/reports`: one report from a phone, and [`submit_one`], the
//! path every report takes (a batch's items and Open311's requests too):
//! validation, the reporter's area and `received_by` (ADR 0026), sealing of
//! personal information, the group commit with its outbox row, replays.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, SubsecRound, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::report::{Crs, NewReport, ReportStatus, ValidationError};
use gridwork_events::{pb, Event, Payload};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{PayloadTooLarge, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{report, report_event};
use sea_orm::{EntityTrait, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{load_view, location_json, media_refs, ReportIn, ReportView, TimelineEntry};
use crate::error::IntakeError;
use crate::group_commit::{Prepared, Stored};
use crate::State;

/// How far in the future a device clock may be before a report is refused.
const MAX_CLOCK_SKEW: Duration = Duration::minutes(10);

/// Only grid workers (and admins) submit reports, one at a time or in a batch.
pub(super) fn require_reporter(actor: &Actor) -> Result<(), IntakeError> {
    if matches!(actor.role, Role::GridWorker | Role::Admin) {
        Ok(())
    } else {
        Err(IntakeError::Forbidden("only grid workers submit reports"))
    }
}

/// Counts the caller's reports per minute in the cache. The cache only
/// protects: when it is down, reports are accepted.
pub(super) async fn rate_limit(state: &State, actor: &Actor) -> Result<(), IntakeError> {
    crate::limits::rate_limit_subject(state, &actor.id).await
}

fn idem_key(id: &Uuid) -> String {
    format!("intake:report:{id}")
}

/// Submits a report. 201 for a new report, 200 for a replay of the same
/// report, 409 when the id was used for different content.
#[utoipa::path(post, path = "/v1/reports", tag = "reports", request_body = ReportIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Accepted: stored, on its way to a grid", body = ReportView, links(
            ("report" = (operation_id = "get_report", parameters(("id" = "$response.body#/id")),
                description = "The report, its status and, once routed, its case")),
        )),
        (status = 200, description = "A replay of a report already accepted", body = ReportView),
        (status = 400, description = "Invalid: `code` and `field` say what", body = ApiError),
        Unauthorized,
        (status = 403, description = "Not a grid worker, or the place lies outside the area the reporter's \
            scope allows (`outside_report_area`)", body = ApiError),
        (status = 409, description = "The id was used for a different report", body = ApiError),
        PayloadTooLarge,
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 429, description = "Too many requests from this token; see Retry-After", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        Unavailable,
    ))]
pub async fn submit(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let actor = caller.0;
    require_reporter(&actor)?;
    rate_limit(&state, &actor).await?;
    // Read only now that the caller may send it.
    let body: ReportIn = gridwork_platform::body::json(&req, body).await?;
    let (created, v) = submit_one(&state, &actor, body, Origin::Phone).await?;
    Ok(if created { HttpResponse::Created().json(v) } else { HttpResponse::Ok().json(v) })
}

/// Where a report comes from: the rules of its reporter's area differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `POST /v1/reports` and its batch: the caller's own report, in the
    /// area their scope allows (`intake.report_area`).
    Phone,
    /// Open311: the key's area and the served area were checked by Open311.
    Open311,
}

/// Where the report lies, against who reports it and who received it:
/// - a grid worker's point (in WGS-84) must lie in, or within
///   `assigner.tolerance_m` of, a grid (or, for a county-wide or wider
///   area, the county) of the area `intake.report_area` gives their scope;
/// - `received_by` must be a centre whose code covers the grid (or county)
///   the assigner will give the point: the same registry, version and rules.
///
/// When the registry knows no grid and no county at all, nothing can be
/// placed and nothing is checked (the assigner triages by county later).
async fn check_place(state: &State, actor: &Actor, report: &NewReport, origin: Origin) -> Result<(), IntakeError> {
    let area = match origin {
        Origin::Phone => actor.report_area(state.report_area),
        Origin::Open311 => None,
    };
    if area.is_none() && report.received_by.is_none() {
        return Ok(());
    }
    // The registry as loaded: a report never waits for a reload (which takes
    // seconds for a province's grids). Versions are stored a lead time
    // before they apply, so what is loaded covers the report.
    let grids = state.grids.loaded_at(report.occurred_at).map_err(IntakeError::Internal)?;
    if grids.index.is_empty() && grids.index.county_count() == 0 {
        return Ok(());
    }
    let loc = &report.location;
    let (lon, lat) = match loc.crs {
        Crs::Wgs84 => (loc.lon, loc.lat),
        Crs::Gcj02 => gridwork_geoindex::gcj02_to_wgs84(loc.lon, loc.lat),
    };
    if let Some(area) = area {
        let tolerance_m = grids.index.tolerance_m();
        if !grids.index.near(lon, lat, tolerance_m, |code| gridwork_domain::codes::covers(&area, code)) {
            return Err(IntakeError::OutsideArea { area, level: state.report_area.as_str(), tolerance_m });
        }
    }
    if let Some(received_by) = &report.received_by {
        let place = grids.assign(loc.lat, loc.lon, loc.crs).map(|a| a.hierarchy.finest().to_owned());
        let centre = gridwork_storage::entity::centre::Entity::find_by_id(received_by.clone()).one(&state.db).await?;
        if let Some(place) = place {
            if centre.is_none() || !gridwork_domain::codes::covers(received_by, &place) {
                return Err(IntakeError::ReceivedByNotAbovePlace { received_by: received_by.clone(), place });
            }
        }
    }
    Ok(())
}

/// Stores one report (or recognises its replay): whether it was new, and
/// the report as stored.
pub async fn submit_one(
    state: &State,
    actor: &Actor,
    body: ReportIn,
    origin: Origin,
) -> Result<(bool, ReportView), IntakeError> {
    let hash =
        hex::encode(Sha256::digest(serde_json::to_vec(&body).map_err(|e| IntakeError::Internal(e.to_string()))?));
    let device_time = body.device_time.map(|t| t.trunc_subsecs(6));
    let report = body.into_domain(&actor.id);
    let id = report.id.to_string();

    // Fast path for replays: the database stays the source of truth. The
    // hash covers the body, not who sent it: a replay is the reporter's own,
    // as on the slow path below (another worker's same body is a conflict,
    // never a view of someone else's report).
    if let Ok(Some(cached)) = state.cache.get(&idem_key(&report.id)).await {
        if cached == hash.as_bytes() {
            if let Some(v) = load_view(state, &id).await? {
                if v.reporter != actor.id {
                    return Err(IntakeError::IdConflict(id));
                }
                return Ok((false, v));
            }
        }
    }

    report.validate(|c| state.categories.get(c).copied())?;
    // Microseconds: what every database keeps, so a replay shows the same time.
    let now = Utc::now().trunc_subsecs(6);
    if report.occurred_at > now + MAX_CLOCK_SKEW {
        return Err(ValidationError::new(
            "occurred_at",
            "occurred_in_future",
            "occurred_at is in the future; check the device clock",
            "事件发生时间晚于当前时间，请检查设备时钟",
        )
        .into());
    }
    check_place(state, actor, &report, origin).await?;
    let is_petition = state.categories.get(&report.category).copied().unwrap_or(false);
    let (petitioner_key, matter_key) = if is_petition {
        let matter = report.matter.clone().unwrap_or_else(|| report.description.clone());
        (state.keyer.petitioner_key(&report.parties), Some(state.keyer.matter_key(&matter)))
    } else {
        (None, None)
    };

    let parties = serde_json::to_string(&report.parties).map_err(|e| IntakeError::Internal(e.to_string()))?;
    // Sealed at rest, bound to this report.
    let parties = state.keyring.seal(&id, parties.as_bytes()).map_err(|e| IntakeError::Internal(e.to_string()))?;
    // The matter's text can name people too: sealed the same way.
    let matter = match &report.matter {
        Some(m) => Some(state.keyring.seal(&id, m.as_bytes()).map_err(|e| IntakeError::Internal(e.to_string()))?),
        None => None,
    };
    // So can the grid worker's on-the-spot note: sealed here, and only its
    // length goes on the topic (mediation reads it from the report).
    let on_spot_note = report.on_spot.as_ref().and_then(|o| o.note.as_deref()).filter(|n| !n.is_empty());
    let on_spot_note_chars = on_spot_note.map_or(0, |n| u32::try_from(n.chars().count()).unwrap_or(u32::MAX));
    let on_spot_note = match on_spot_note {
        Some(n) => Some(state.keyring.seal(&id, n.as_bytes()).map_err(|e| IntakeError::Internal(e.to_string()))?),
        None => None,
    };
    let row = report::ActiveModel {
        id: Set(id.clone()),
        reporter: Set(report.reporter.clone()),
        occurred_at: Set(report.occurred_at),
        received_at: Set(now),
        lat: Set(report.location.lat),
        lon: Set(report.location.lon),
        accuracy_m: Set(report.location.accuracy_m),
        crs: Set(report.location.crs.as_str().to_owned()),
        address: Set(report.address.clone()),
        category: Set(report.category.clone()),
        description: Set(report.description.clone()),
        urgency: Set(report.urgency.as_str().to_owned()),
        parties: Set(parties),
        matter: Set(matter),
        body_hash: Set(hash.clone()),
        status: Set(ReportStatus::Submitted.as_str().to_owned()),
        grid: Set(None),
        centre: Set(None),
        case_id: Set(None),
        case_version: Set(0),
        updated_at: Set(now),
        party_count: Set(report.parties.len() as i32),
        device_time: Set(device_time),
        media: Set((!report.media.is_empty()).then(|| serde_json::json!(report.media).to_string())),
        on_spot_note: Set(on_spot_note),
    };
    let first_entry = report_event::ActiveModel {
        report_id: Set(id.clone()),
        at: Set(now),
        status: Set(ReportStatus::Submitted.as_str().to_owned()),
        note: Set("received by intake".into()),
        ..Default::default()
    };
    let event = Event::new(
        crate::PRODUCER,
        report.occurred_at,
        Payload::ReportSubmitted(pb::report::ReportSubmitted {
            report_id: id.clone(),
            reporter_id: report.reporter.clone(),
            occurred_at: Some(gridwork_events::timestamp(report.occurred_at)),
            location: Some(pb::report::Location {
                lat: report.location.lat,
                lon: report.location.lon,
                accuracy_m: report.location.accuracy_m.unwrap_or(0.0),
                crs: report.location.crs.as_str().to_owned(),
            }),
            category: report.category.clone(),
            urgency: report.urgency.as_str().to_owned(),
            party_count: report.parties.len() as u32,
            petitioner_key: petitioner_key.unwrap_or_default(),
            matter_key: matter_key.unwrap_or_default(),
            received_by: report.received_by.clone().unwrap_or_default(),
            on_spot_outcome: report.on_spot.as_ref().map(|o| o.outcome.clone()).unwrap_or_default(),
            on_spot_note: String::new(),
            on_spot_note_chars,
        }),
    );
    let prepared = Prepared {
        report: row,
        event: first_entry,
        topic: state
            .topics
            .submitted(gridwork_domain::report::is_emergency(report.urgency, &report.category))
            .to_owned(),
        key: id.clone(),
        payload: event.encode(),
        media: report.media.clone(),
    };
    // One commit shared with concurrent submissions; durable before we answer.
    let stored = state.batcher.store(prepared).await.map_err(IntakeError::Unavailable)?;
    if stored == Stored::Existing {
        let existing =
            report::Entity::find_by_id(id.clone()).one(&state.db).await?.ok_or(IntakeError::NotFound("report"))?;
        if existing.body_hash != hash || existing.reporter != actor.id {
            return Err(IntakeError::IdConflict(id));
        }
        let v = load_view(state, &id).await?.ok_or(IntakeError::NotFound("report"))?;
        return Ok((false, v));
    }
    state.accepted.with_label_values(&[report.urgency.as_str()]).inc();
    let _ = state.cache.set(&idem_key(&report.id), hash.as_bytes(), std::time::Duration::from_secs(3600)).await;
    tracing::info!(report = %id, category = %report.category, "report accepted");
    // What was just committed, without reading it back.
    let v = ReportView {
        id,
        status: ReportStatus::Submitted.as_str().to_owned(),
        reporter: report.reporter.clone(),
        occurred_at: report.occurred_at,
        received_at: now,
        device_time,
        media: media_refs(state, &report.media).await?,
        category: report.category.clone(),
        urgency: report.urgency.as_str().to_owned(),
        location: location_json(
            report.location.lat,
            report.location.lon,
            report.location.accuracy_m,
            report.location.crs.as_str(),
        ),
        address: report.address.clone(),
        description: report.description.clone(),
        party_count: report.parties.len(),
        grid: None,
        centre: None,
        case_id: None,
        timeline: vec![TimelineEntry {
            at: now,
            status: ReportStatus::Submitted.as_str().to_owned(),
            note: "received by intake".into(),
        }],
    };
    Ok((true, v))
}
