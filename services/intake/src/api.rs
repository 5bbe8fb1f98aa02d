//! intake's HTTP API: reports from phones, the reporter's own view, tokens.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::report::{Crs, Location, NewReport, OnSpot, Party, ReportStatus, Urgency, ValidationError};
use gridwork_events::{pb, Event, Payload};
use gridwork_platform::auth::Caller;
use gridwork_platform::ApiError;
use gridwork_storage::entity::{report, report_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::batch::{Prepared, Stored};
use crate::error::IntakeError;
use crate::State;

/// How far in the future a device clock may be before a report is refused.
const MAX_CLOCK_SKEW: Duration = Duration::minutes(10);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationIn {
    /// Latitude, degrees (within China).
    #[schema(example = 36.6512, minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Longitude, degrees.
    #[schema(example = 117.1201, minimum = -180, maximum = 180)]
    pub lon: f64,
    /// Horizontal accuracy in metres, as the phone estimates it.
    #[serde(default)]
    pub accuracy_m: Option<f64>,
    /// `wgs84` (GPS, the default) or `gcj02` (Chinese map SDKs).
    #[serde(default)]
    #[schema(schema_with = crs_schema)]
    pub crs: Crs,
}

fn crs_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["wgs84", "gcj02"]))
        .default(Some(serde_json::json!("wgs84")))
        .build()
}

fn urgency_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["normal", "urgent", "emergency"]))
        .default(Some(serde_json::json!("normal")))
        .build()
}

/// A party to a dispute or petition; sealed at rest, never on the bus.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyIn {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>,
}

/// `POST /v1/reports`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIn {
    /// Client-generated UUID: posting the same id again returns the same report.
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub location: LocationIn,
    #[serde(default)]
    pub address: Option<String>,
    /// A category code of the taxonomy (the list is in this spec).
    pub category: String,
    /// What happened, in the grid worker's words.
    #[schema(min_length = 1, max_length = 4000)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = urgency_schema)]
    pub urgency: Urgency,
    #[serde(default)]
    pub parties: Vec<PartyIn>,
    /// Petitions: what the matter is about.
    #[serde(default)]
    pub matter: Option<String>,
    /// Received in person at this centre (a street, county or city code)
    /// rather than through the grid's own centre.
    #[serde(default)]
    pub received_by: Option<String>,
    /// When the phone queued the report, by its own clock (kept beside the
    /// server's `received_at`).
    #[serde(default)]
    pub device_time: Option<DateTime<Utc>>,
    /// Photos and videos (ids from `POST /v1/media`), uploaded before or
    /// after the report.
    #[serde(default)]
    pub media: Vec<String>,
    /// 就地化解: the grid worker already resolved the matter on the spot.
    #[serde(default)]
    pub resolved_on_spot: Option<OnSpotIn>,
}

/// A matter resolved on the spot: the outcome (a case outcome code) and
/// what was done; photos go in the report's `media`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnSpotIn {
    pub outcome: String,
    #[serde(default)]
    pub note: Option<String>,
}

/// A medium a report names, and whether it has arrived yet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaRef {
    pub id: String,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    pub url: String,
}

/// The media `ids` name, with what has been uploaded so far.
async fn media_refs(state: &State, ids: &[String]) -> Result<Vec<MediaRef>, IntakeError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found: std::collections::HashMap<String, gridwork_storage::entity::media::Model> =
        gridwork_storage::entity::media::Entity::find()
            .filter(gridwork_storage::entity::media::Column::Id.is_in(ids.iter().cloned()))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
    Ok(ids
        .iter()
        .map(|id| {
            let m = found.get(id);
            MediaRef {
                id: id.clone(),
                available: m.is_some(),
                content_type: m.map(|m| m.content_type.clone()),
                size: m.map(|m| m.size),
                url: format!("/v1/media/{id}"),
            }
        })
        .collect())
}

/// One step of a report's way through the pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub status: String,
    pub note: String,
}

/// A report as its reporter and case workers see it (no personal data:
/// parties are only counted).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    pub id: String,
    pub status: String,
    pub reporter: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The phone's time of queueing, as it said.
    pub device_time: Option<DateTime<Utc>>,
    pub media: Vec<MediaRef>,
    pub category: String,
    pub urgency: String,
    pub location: LocationOut,
    pub address: Option<String>,
    pub description: String,
    pub party_count: usize,
    pub grid: Option<String>,
    pub centre: Option<String>,
    pub case_id: Option<String>,
    pub timeline: Vec<TimelineEntry>,
}

/// Where a report was made, as the phone sent it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationOut {
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
    pub crs: String,
}

fn location_json(lat: f64, lon: f64, accuracy_m: Option<f64>, crs: &str) -> LocationOut {
    LocationOut { lat, lon, accuracy_m, crs: crs.to_owned() }
}

fn view(r: report::Model, events: Vec<report_event::Model>) -> ReportView {
    let party_count = r.party_count();
    ReportView {
        id: r.id,
        status: r.status,
        reporter: r.reporter,
        occurred_at: r.occurred_at,
        received_at: r.received_at,
        device_time: r.device_time,
        media: Vec::new(),
        category: r.category,
        urgency: r.urgency,
        location: location_json(r.lat, r.lon, r.accuracy_m, &r.crs),
        address: r.address,
        description: r.description,
        party_count,
        grid: r.grid,
        centre: r.centre,
        case_id: r.case_id,
        timeline: events.into_iter().map(|e| TimelineEntry { at: e.at, status: e.status, note: e.note }).collect(),
    }
}

impl ReportIn {
    fn into_domain(self, reporter: &str) -> NewReport {
        NewReport {
            id: self.id,
            reporter: reporter.to_owned(),
            occurred_at: self.occurred_at,
            location: Location {
                lat: self.location.lat,
                lon: self.location.lon,
                accuracy_m: self.location.accuracy_m,
                crs: self.location.crs,
            },
            address: self.address,
            category: self.category,
            description: self.description,
            urgency: self.urgency,
            parties: self
                .parties
                .into_iter()
                .map(|p| Party { name: p.name, phone: p.phone, id_number: p.id_number })
                .collect(),
            matter: self.matter,
            received_by: self.received_by,
            media: self.media,
            on_spot: self.resolved_on_spot.map(|o| OnSpot { outcome: o.outcome, note: o.note }),
        }
    }
}

async fn load_view(state: &State, id: &str) -> Result<Option<ReportView>, IntakeError> {
    let Some(r) = report::Entity::find_by_id(id.to_owned()).one(&state.db).await? else {
        return Ok(None);
    };
    let events = report_event::Entity::find()
        .filter(report_event::Column::ReportId.eq(id))
        // In the order the pipeline recorded the steps: events of different
        // topics may reach intake in either order.
        .order_by_asc(report_event::Column::At)
        .order_by_asc(report_event::Column::Id)
        .all(&state.db)
        .await?;
    let ids: Vec<String> = r.media.as_deref().and_then(|m| serde_json::from_str(m).ok()).unwrap_or_default();
    let mut v = view(r, events);
    v.media = media_refs(state, &ids).await?;
    Ok(Some(v))
}

/// Counts the caller's reports per minute in the cache. The cache only
/// protects: when it is down, reports are accepted.
async fn rate_limit(state: &State, actor: &Actor) -> Result<(), IntakeError> {
    rate_limit_subject(state, &actor.id).await
}

/// `intake.rate_limit_per_minute` for one subject (a user, an API key).
pub(crate) async fn rate_limit_subject(state: &State, subject: &str) -> Result<(), IntakeError> {
    if state.rate_limit == 0 {
        return Ok(());
    }
    let (minute, left) = crate::signin::window(Utc::now().timestamp(), 60);
    let key = format!("intake:rate:{subject}:{minute}");
    match state.cache.incr(&key, std::time::Duration::from_secs(61)).await {
        Ok(n) if n > state.rate_limit => Err(IntakeError::RateLimited(left)),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::debug!(error = %e, "rate limit not checked: cache unavailable");
            Ok(())
        }
    }
}

fn idem_key(id: &Uuid) -> String {
    format!("intake:report:{id}")
}

/// Submits a report. 201 for a new report, 200 for a replay of the same
/// report, 409 when the id was used for different content.
#[utoipa::path(post, path = "/v1/reports", tag = "reports", request_body = ReportIn,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Accepted: stored, on its way to a grid", body = ReportView),
        (status = 200, description = "A replay of a report already accepted", body = ReportView),
        (status = 400, description = "Invalid: `code` and `field` say what", body = ApiError),
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker, or the place lies outside the area the reporter's \
            scope allows (`outside_report_area`)", body = ApiError),
        (status = 409, description = "The id was used for a different report", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 429, description = "Too many requests from this token; see Retry-After", body = ApiError,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn submit(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let actor = caller.0;
    if !matches!(actor.role, Role::GridWorker | Role::Admin) {
        return Err(IntakeError::Forbidden("only grid workers submit reports"));
    }
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

/// `POST /v1/reports/batch`: the reports a phone queued while offline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    pub reports: Vec<ReportIn>,
}

/// One item's result. The same batch sent again, in any order and any
/// number of times, gives the same results: nothing is stored twice.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// The item's client id.
    pub id: Uuid,
    /// `accepted` (stored now or before), `conflict` (the id was used for a
    /// different report: nothing overwritten), `invalid` (refused as it is:
    /// `status` and `error.code` say why — 400 for the content, 403
    /// `outside_report_area` for a place outside the reporter's area), or
    /// `unavailable` (try again).
    #[schema(value_type = String)]
    pub result: &'static str,
    /// The HTTP status the item alone would have got (accepted: 200).
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<gridwork_platform::ApiError>,
}

/// The results of a batch, one per item in the order sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    /// Items accepted (now or before).
    pub accepted: usize,
    pub results: Vec<ItemResult>,
}

/// Submits the reports a phone queued while offline; each item gets its own
/// result. Replays, in any order, create nothing twice.
#[utoipa::path(post, path = "/v1/reports/batch", tag = "reports", request_body = BatchIn,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per-item results", body = BatchOut),
        (status = 400, description = "Malformed body, unknown field or bad batch size", body = ApiError),
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 403, description = "Not a grid worker", body = ApiError),
        (status = 413, description = "Body too large", body = ApiError),
        (status = 415, description = "Not JSON", body = ApiError),
        (status = 429, description = "Too many requests from this token", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
    ))]
pub async fn submit_batch(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, IntakeError> {
    let actor = caller.0;
    if !matches!(actor.role, Role::GridWorker | Role::Admin) {
        return Err(IntakeError::Forbidden("only grid workers submit reports"));
    }
    // Read only now that the caller may send it.
    let items = gridwork_platform::body::json::<BatchIn>(&req, body).await?.reports;
    if items.is_empty() || items.len() > state.batch_max_items {
        return Err(ValidationError::new(
            "reports",
            "invalid_batch_size",
            format!("a batch holds 1 to {} reports, got {}", state.batch_max_items, items.len()),
            format!("每批 1 至 {} 条，收到 {} 条", state.batch_max_items, items.len()),
        )
        .into());
    }
    // A phone coming back online sends its queue at once: one request.
    rate_limit(&state, &actor).await?;
    let mut results = Vec::with_capacity(items.len());
    // In order: the same id twice in one batch is judged like a replay.
    for item in items {
        let id = item.id;
        results.push(match submit_one(&state, &actor, item, Origin::Phone).await {
            Ok((_, v)) => ItemResult {
                id,
                result: "accepted",
                status: 200,
                received_at: Some(v.received_at),
                device_time: v.device_time,
                error: None,
            },
            Err(e) => {
                let api = e.api();
                let result = match api.status.as_u16() {
                    409 => "conflict",
                    s if s >= 500 => "unavailable",
                    _ => "invalid",
                };
                if api.status.as_u16() >= 500 {
                    tracing::warn!(report = %id, error = %e, "batch item not stored");
                }
                ItemResult {
                    id,
                    result,
                    status: api.status.as_u16(),
                    received_at: None,
                    device_time: None,
                    error: Some(api),
                }
            }
        });
    }
    let accepted = results.iter().filter(|r| r.result == "accepted").count();
    Ok(HttpResponse::Ok().json(BatchOut { accepted, results }))
}

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
#[utoipa::path(get, path = "/v1/reports/{id}", tag = "reports",
    params(("id" = Uuid, Path, description = "The report's client id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The report, its status and timeline", body = ReportView),
        (status = 400, description = "The id is not a UUID", body = ApiError),
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 404, description = "No such report visible to the caller", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
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
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 503, description = "Storage unavailable; retry", body = ApiError),
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

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub revoked: bool,
    /// The revoked token's id.
    pub jti: String,
}

/// Revokes the token this request presents (log out) and, when a password
/// sign-in issued it, the refresh tokens of that sign-in with every access
/// token issued from them. Other replicas refuse them at once.
#[utoipa::path(post, path = "/v1/auth/revoke", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 401, description = "No or bad token", body = ApiError),
        (status = 503, description = "Revocation list unavailable; retry", body = ApiError),
    ))]
pub async fn revoke(
    state: web::Data<State>,
    ctx: web::Data<gridwork_platform::Context>,
    caller: Caller,
) -> Result<HttpResponse, IntakeError> {
    let families = crate::tokens::end_session(&state, &ctx, &caller.1.jti, caller.1.expires_at, &caller.0.id).await?;
    tracing::info!(user = %caller.0.id, families, "signed out");
    Ok(HttpResponse::Ok().json(Revoked { revoked: true, jti: caller.1.jti.clone() }))
}

/// The embedded issuer's public keys (JWK Set), for verifying its tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(state: web::Data<State>) -> HttpResponse {
    HttpResponse::Ok().json(state.issuer.jwks())
}
