//! Reports from grid workers' phones: what a report looks like on the wire
//! (what a phone sends, what its reporter and case workers see) and how a
//! stored report is read back. The endpoints are in the submodules:
//! `submit` (`POST /v1/reports`, and the one path every report takes, also
//! Open311's), `batch` (`POST /v1/reports/batch`, a phone's offline queue)
//! and `read` (`GET /v1/reports/{id}`, `GET /v1/me/reports`).

use chrono::{DateTime, Utc};
use gridwork_domain::report::{Crs, Location, NewReport, OnSpot, Party, Urgency};
use gridwork_platform::media::{refs, MediaRef};
use gridwork_storage::entity::{report, report_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::IntakeError;
use crate::State;

pub mod batch;
pub mod read;
pub mod submit;

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

/// The media `ids` name, with what has been uploaded so far.
pub(crate) async fn media_refs(state: &State, ids: &[String]) -> Result<Vec<MediaRef>, IntakeError> {
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
    Ok(refs(ids.iter().cloned(), &found))
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

pub(crate) fn location_json(lat: f64, lon: f64, accuracy_m: Option<f64>, crs: &str) -> LocationOut {
    LocationOut { lat, lon, accuracy_m, crs: crs.to_owned() }
}

pub(crate) fn view(r: report::Model, events: Vec<report_event::Model>) -> ReportView {
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
    pub(crate) fn into_domain(self, reporter: &str) -> NewReport {
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

pub(crate) async fn load_view(state: &State, id: &str) -> Result<Option<ReportView>, IntakeError> {
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
