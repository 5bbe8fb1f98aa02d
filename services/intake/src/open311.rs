//! Open311 GeoReport v2 under `/open311/v2/` (ADR 0020).
//!
//! - `GET services.{json,xml}`, `GET services/{code}.{json,xml}`: the category
//!   taxonomy as services (petition categories are not offered).
//! - `POST requests.{json,xml}` (form-encoded, with an `api_key`): a report
//!   stored through the same path as `POST /v1/reports` (`api::submit_one`,
//!   the group-commit batcher, the outbox), so it gets a grid and a case like
//!   any other. The report id (UUID v4, made here) is the `service_request_id`.
//! - `GET requests/{id}.{json,xml}`, `GET requests.{json,xml}`: status, for
//!   reports that came in through Open311 only. Anyone may look a request up
//!   by its id; listing without ids needs the integration's `api_key` and
//!   lists its own requests.
//!
//! What Open311 shows is never personal data: no parties, no petition
//! matter, no reporter, no worker's notes (status notes are fixed phrases).
//! Errors are GeoReport's shape, `[{"code": 400, "description": "…"}]`
//! (`<errors><error>…` in XML), with the HTTP status of `code`.
//!
//! API keys are issued to integrations by `gridwork apikey issue`
//! ([`issue_key`]), stored as SHA-256 only, revocable, and map to a
//! reporting identity and a scope (an area and a set of categories).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use geo::{BoundingRect, Closest, ClosestPoint, Distance, Haversine, Intersects};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::codes::{self, Level};
use gridwork_domain::report::{Crs, ReportStatus, Urgency};
use gridwork_platform::routes::{Access, Method, Route};
use gridwork_platform::Context;
use gridwork_storage::entity::{api_key, api_key_report, category, centre, grid_version, report, unit, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::{LocationIn, ReportIn};
use crate::error::IntakeError;
use crate::State;

/// Every key starts with this, so a leaked one is easy to recognise.
pub const KEY_PREFIX: &str = "gw311_";
/// How often each worker reloads the counties gridwork serves.
const AREAS_REFRESH: StdDuration = StdDuration::from_secs(60);
/// The longest `start_date`..`end_date` a listing covers, as the spec says.
const MAX_RANGE_DAYS: i64 = 90;
const MAX_LISTED: u64 = 1000;
const MAX_IDS: usize = 200;
/// Where an external `media_url` is kept: the last line of the description.
const MEDIA_LINE: &str = "\n\nmedia_url: ";
const SERVICE_NOTICE: &str = "received: gridwork places it in its grid and the comprehensive-management centre \
                              that owns the grid handles it (已受理，将分派至所属网格及综治中心办理)";

/// The routes, for `routes()` in lib.rs: `.configure(open311::routes)`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let scope = web::scope(PREFIX).app_data(web::Data::new(Areas::default()));
    let scope = gridwork_platform::routes::register_scope(scope, PREFIX, ROUTES).default_service(web::to(unknown));
    // The scope's routes are registered from ROUTES just above.
    #[allow(clippy::disallowed_methods)]
    cfg.service(scope);
}

const PREFIX: &str = "/open311/v2";

/// Open311's route table (ADR 0033): discovery and look-up by id are public
/// (GeoReport v2); listing and posting need an integration's `api_key`.
pub static ROUTES: &[Route] = &[
    Route::new(Method::Get, "/open311/v2/services.{format}", Access::Public, |r| r.to(services)),
    Route::new(Method::Get, "/open311/v2/services/{file}", Access::Public, |r| r.to(service_definition)),
    Route::new(Method::Get, "/open311/v2/requests.{format}", Access::ApiKey, |r| r.to(list_requests)),
    Route::new(Method::Post, "/open311/v2/requests.{format}", Access::ApiKey, |r| r.to(create_request)),
    Route::new(Method::Get, "/open311/v2/requests/{file}", Access::Public, |r| r.to(one_request)),
];

// ---------------------------------------------------------------- errors

/// A GeoReport v2 error: rendered as `[{"code", "description"}]`.
#[derive(Debug)]
pub struct Open311Error {
    pub status: StatusCode,
    pub description: String,
    retry_after: Option<u64>,
}

impl Open311Error {
    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        Open311Error { status, description: description.into(), retry_after: None }
    }
    fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }
    fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, description)
    }
    fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    fn render(&self, format: Format) -> HttpResponse {
        let code = self.status.as_u16();
        let mut res = match format {
            Format::Json => HttpResponse::build(self.status)
                .json(serde_json::json!([{"code": code, "description": self.description}])),
            Format::Xml => {
                let mut x = String::from(XML_HEAD);
                x.push_str("<errors><error>");
                el(&mut x, "code", Some(&code.to_string()));
                el(&mut x, "description", Some(&self.description));
                x.push_str("</error></errors>");
                xml_response(self.status, x)
            }
        };
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<DbErr> for Open311Error {
    fn from(e: DbErr) -> Self {
        tracing::warn!(error = %e, "open311: database unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; try again")
    }
}

impl From<IntakeError> for Open311Error {
    fn from(e: IntakeError) -> Self {
        let api = e.api();
        if api.status.is_server_error() {
            tracing::warn!(error = %e, "open311: request not stored");
            return Self::new(api.status, "temporarily unavailable: the request was not stored; try again");
        }
        let description = match api.field.as_deref() {
            Some(f) => format!("{}: {}", open311_field(f), api.message),
            None => api.message,
        };
        let retry_after = match e {
            IntakeError::RateLimited(secs) => Some(secs),
            _ => None,
        };
        Open311Error { status: api.status, description, retry_after }
    }
}

/// gridwork's field names in Open311's words.
fn open311_field(field: &str) -> &str {
    match field {
        "location.lat" => "lat",
        "location.lon" => "long",
        "category" => "service_code",
        "address" => "address_string",
        other => other,
    }
}

// ---------------------------------------------------------------- formats

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

impl Format {
    fn parse(ext: &str) -> Result<Format, Open311Error> {
        match ext {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => Err(Open311Error::not_found(format!("format .{other} is not supported: use .json or .xml"))),
        }
    }

    /// `name.ext` → (`name`, format).
    fn split(file: &str) -> Result<(&str, Format), Open311Error> {
        match file.rsplit_once('.') {
            Some((name, ext)) if !name.is_empty() => Ok((name, Format::parse(ext)?)),
            _ => Err(Open311Error::not_found(format!("{file}: name the format, e.g. {file}.json"))),
        }
    }
}

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

fn xml_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status).content_type("text/xml; charset=utf-8").body(body)
}

/// `<name>value</name>`, escaped; `<name/>` for none.
fn el(out: &mut String, name: &str, value: Option<&str>) {
    let Some(value) = value else {
        out.push_str(&format!("<{name}/>"));
        return;
    };
    out.push_str(&format!("<{name}>"));
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // No escape can carry these: replaced, visibly.
            c if !xml_fit(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out.push_str(&format!("</{name}>"));
}

/// Whether an XML 1.0 document can carry `c`: its `Char` production
/// excludes C0 controls other than tab and line breaks, U+FFFE and U+FFFF
/// (not even `&#xFFFF;` may name them), and it tells documents to avoid the
/// other non-characters (U+FDD0–U+FDEF, the last two code points of every
/// plane). Text stored with them (JSON carries them) is shown in XML with
/// U+FFFD in their place.
fn xml_fit(c: char) -> bool {
    let n = c as u32;
    match c {
        '\t' | '\n' | '\r' => true,
        _ if n < 0x20 => false,
        _ if (0xFDD0..=0xFDEF).contains(&n) => false,
        _ => n & 0xFFFE != 0xFFFE,
    }
}

/// `<root><item>…</item>…</root>`.
fn xml_list(root: &str, item: &str, rows: impl Iterator<Item = Vec<(&'static str, Option<String>)>>) -> String {
    let mut x = String::from(XML_HEAD);
    x.push_str(&format!("<{root}>"));
    for fields in rows {
        x.push_str(&format!("<{item}>"));
        for (name, value) in fields {
            el(&mut x, name, value.as_deref());
        }
        x.push_str(&format!("</{item}>"));
    }
    x.push_str(&format!("</{root}>"));
    x
}

/// One GeoReport service: a category of the taxonomy.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOut {
    pub service_code: String,
    pub service_name: String,
    pub description: String,
    pub metadata: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub keywords: String,
    pub group: String,
}

impl ServiceOut {
    fn from_category(c: category::Model) -> Self {
        let group = c.code.split('.').next().unwrap_or_default().to_owned();
        ServiceOut {
            keywords: format!("{}, {}, {}", c.code.replace(['.', '_'], ", "), c.name_en, c.name_zh),
            service_code: c.code,
            service_name: c.name_zh,
            description: c.name_en,
            metadata: false,
            kind: "realtime",
            group,
        }
    }

    fn xml_fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_code", Some(self.service_code.clone())),
            ("service_name", Some(self.service_name.clone())),
            ("description", Some(self.description.clone())),
            ("metadata", Some(self.metadata.to_string())),
            ("type", Some(self.kind.to_owned())),
            ("keywords", Some(self.keywords.clone())),
            ("group", Some(self.group.clone())),
        ]
    }
}

/// A service request's status, as GeoReport shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestOut {
    pub service_request_id: String,
    /// `open` or `closed`.
    pub status: &'static str,
    pub status_notes: String,
    pub service_name: Option<String>,
    pub service_code: String,
    pub description: String,
    pub agency_responsible: Option<String>,
    pub service_notice: Option<String>,
    pub requested_datetime: String,
    pub updated_datetime: String,
    pub expected_datetime: Option<String>,
    pub address: Option<String>,
    pub address_id: Option<String>,
    pub zipcode: Option<String>,
    pub lat: f64,
    pub long: f64,
    pub media_url: Option<String>,
}

impl RequestOut {
    fn xml_fields(&self) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("service_request_id", Some(self.service_request_id.clone())),
            ("status", Some(self.status.to_owned())),
            ("status_notes", Some(self.status_notes.clone())),
            ("service_name", self.service_name.clone()),
            ("service_code", Some(self.service_code.clone())),
            ("description", Some(self.description.clone())),
            ("agency_responsible", self.agency_responsible.clone()),
            ("service_notice", self.service_notice.clone()),
            ("requested_datetime", Some(self.requested_datetime.clone())),
            ("updated_datetime", Some(self.updated_datetime.clone())),
            ("expected_datetime", self.expected_datetime.clone()),
            ("address", self.address.clone()),
            ("address_id", self.address_id.clone()),
            ("zipcode", self.zipcode.clone()),
            ("lat", Some(self.lat.to_string())),
            ("long", Some(self.long.to_string())),
            ("media_url", self.media_url.clone()),
        ]
    }
}

/// The answer to a POST.
#[derive(Debug, Clone, Serialize)]
pub struct PostedOut {
    pub service_request_id: String,
    pub service_notice: String,
    pub account_id: Option<String>,
}

enum Doc {
    Services(Vec<ServiceOut>),
    Definition(String),
    Requests(Vec<RequestOut>),
    Posted(Vec<PostedOut>),
}

impl Doc {
    fn render(&self, format: Format) -> HttpResponse {
        match (format, self) {
            (Format::Json, Doc::Services(s)) => HttpResponse::Ok().json(s),
            (Format::Json, Doc::Definition(code)) => {
                HttpResponse::Ok().json(serde_json::json!({"service_code": code, "attributes": []}))
            }
            (Format::Json, Doc::Requests(r)) => HttpResponse::Ok().json(r),
            (Format::Json, Doc::Posted(p)) => HttpResponse::Ok().json(p),
            (Format::Xml, doc) => xml_response(StatusCode::OK, doc.xml()),
        }
    }

    fn xml(&self) -> String {
        match self {
            Doc::Services(s) => xml_list("services", "service", s.iter().map(ServiceOut::xml_fields)),
            Doc::Definition(code) => {
                let mut x = String::from(XML_HEAD);
                x.push_str("<service_definition>");
                el(&mut x, "service_code", Some(code));
                el(&mut x, "attributes", None);
                x.push_str("</service_definition>");
                x
            }
            Doc::Requests(r) => xml_list("service_requests", "request", r.iter().map(RequestOut::xml_fields)),
            Doc::Posted(p) => xml_list(
                "service_requests",
                "request",
                p.iter().map(|p| {
                    vec![
                        ("service_request_id", Some(p.service_request_id.clone())),
                        ("service_notice", Some(p.service_notice.clone())),
                        ("account_id", p.account_id.clone()),
                    ]
                }),
            ),
        }
    }
}

fn respond(format: Format, result: Result<Doc, Open311Error>) -> HttpResponse {
    match result {
        Ok(doc) => doc.render(format),
        Err(e) => e.render(format),
    }
}

// ---------------------------------------------------------------- parameters

/// Query or form parameters, in order (a name may repeat).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(s: &str) -> Result<Self, Open311Error> {
        web::Query::<Vec<(String, String)>>::from_query(s)
            .map(|q| Params(q.into_inner()))
            .map_err(|e| Open311Error::bad_request(format!("malformed parameters: {e}")))
    }

    /// The last non-empty value of `name`, trimmed.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, v)| k == name && !v.trim().is_empty()).map(|(_, v)| v.trim())
    }

    /// Every value of `name`, comma-separated values split.
    fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// The key of a request: the `api_key` parameter, or an `X-Api-Key` header
/// (which, unlike a query string, stays out of access logs).
fn presented_key<'a>(req: &'a HttpRequest, p: &'a Params) -> Option<&'a str> {
    p.get("api_key").or_else(|| req.headers().get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
}

// ---------------------------------------------------------------- areas

/// The counties gridwork serves (those of its grid versions) with their
/// boundaries: what `jurisdiction_id`, a key's area and a request's lat/long
/// are checked against. One per worker, reloaded every minute.
#[derive(Default)]
pub struct Areas {
    cached: Mutex<Option<Arc<Served>>>,
}

struct Served {
    loaded: Instant,
    counties: Vec<String>,
    shapes: Vec<Shape>,
}

struct Shape {
    county: String,
    area: geo::MultiPolygon<f64>,
    bbox: geo::Rect<f64>,
}

impl Areas {
    async fn get(&self, db: &DatabaseConnection) -> Result<Arc<Served>, Open311Error> {
        let cached = self.cached.lock().ok().and_then(|g| g.clone());
        if let Some(s) = cached.filter(|s| s.loaded.elapsed() < AREAS_REFRESH) {
            return Ok(s);
        }
        let fresh = Arc::new(Served::load(db).await?);
        if let Ok(mut g) = self.cached.lock() {
            *g = Some(fresh.clone());
        }
        Ok(fresh)
    }
}

impl Served {
    async fn load(db: &DatabaseConnection) -> Result<Served, DbErr> {
        let counties: BTreeSet<String> =
            grid_version::Entity::find().all(db).await?.iter().flat_map(|v| v.county_list()).collect();
        let units = unit::Entity::find().filter(unit::Column::Code.is_in(counties.iter().cloned())).all(db).await?;
        let shapes = units
            .into_iter()
            .filter_map(|u| {
                let area = gridwork_geoindex::geojson_io::parse_geometry(u.geometry.as_deref()?).ok()?;
                let bbox = area.bounding_rect()?;
                Some(Shape { county: u.code, area, bbox })
            })
            .collect();
        Ok(Served { loaded: Instant::now(), counties: counties.into_iter().collect(), shapes })
    }

    /// The cities (or provinces) served, to name in an error.
    fn summary(&self) -> String {
        let cities: BTreeSet<String> =
            self.counties.iter().filter_map(|c| c.get(..4)).map(|c| format!("{c}00")).collect();
        if cities.is_empty() {
            "nothing yet (no grids imported)".to_owned()
        } else {
            cities.into_iter().collect::<Vec<_>>().join(", ")
        }
    }

    /// Whether `code` names a province, city or county that covers a
    /// county gridwork serves.
    fn serves(&self, code: &str) -> bool {
        matches!(codes::level_of(code), Ok(Level::Province | Level::City | Level::County))
            && self.counties.iter().any(|c| codes::covers(code, c))
    }

    /// The served county a point lies in, or failing that the nearest
    /// within `tolerance_m` (the assigner's tolerance).
    fn locate(&self, lon: f64, lat: f64, tolerance_m: f64) -> Option<&str> {
        let p = geo::Point::new(lon, lat);
        if let Some(s) = self.shapes.iter().find(|s| s.bbox.intersects(&p) && s.area.intersects(&p)) {
            return Some(&s.county);
        }
        self.shapes
            .iter()
            .filter_map(|s| {
                let d = match s.area.closest_point(&p) {
                    Closest::Intersection(_) => 0.0,
                    Closest::SinglePoint(q) => Haversine.distance(p, q),
                    Closest::Indeterminate => return None,
                };
                (d <= tolerance_m).then_some((s, d))
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(s, _)| s.county.as_str())
    }
}

/// The `jurisdiction_id`, checked: absent, or a province, city or county
/// code over counties gridwork serves (404 otherwise, as the spec says).
async fn jurisdiction(state: &State, areas: &Areas, p: &Params) -> Result<Option<String>, Open311Error> {
    let Some(j) = p.get("jurisdiction_id") else {
        return Ok(None);
    };
    let served = areas.get(&state.db).await?;
    if !served.serves(j) {
        return Err(Open311Error::not_found(format!(
            "jurisdiction_id {j:?} not found: this endpoint serves {} (a province, city or county code)",
            served.summary()
        )));
    }
    Ok(Some(j.to_owned()))
}

// ---------------------------------------------------------------- API keys

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a key's category list allows `code` ("" allows every category
/// Open311 offers; `a.` allows every code under `a.`).
pub fn allows_category(categories: &str, code: &str) -> bool {
    let mut list = categories.split(',').map(str::trim).filter(|c| !c.is_empty()).peekable();
    list.peek().is_none() || list.any(|c| c == code || (c.ends_with('.') && code.starts_with(c)))
}

async fn authenticate(state: &State, key: Option<&str>) -> Result<api_key::Model, Open311Error> {
    let Some(key) = key else {
        return Err(Open311Error::bad_request("api_key is required"));
    };
    match api_key::Entity::find().filter(api_key::Column::KeyHash.eq(hash_key(key))).one(&state.db).await? {
        None => Err(Open311Error::forbidden("invalid api_key")),
        Some(k) if k.revoked_at.is_some() => {
            Err(Open311Error::forbidden(format!("api_key {} was revoked; ask the operator for a new one", k.id)))
        }
        Some(k) => Ok(k),
    }
}

/// intake's per-token limit (`intake.rate_limit_per_minute`), per key.
async fn rate_limit(state: &State, key: &api_key::Model) -> Result<(), Open311Error> {
    Ok(crate::api::rate_limit_subject(state, &format!("apikey:{}", key.id)).await?)
}

/// What `gridwork apikey issue` asks for.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The integration.
    pub name: String,
    /// Username (or, if no such user, the identity) reports are recorded as
    /// reported by.
    pub user: String,
    /// Province, city or county code the key may report into ("" = anywhere served).
    pub area: String,
    /// Category codes or dotted prefixes (`environment.`); empty = all Open311 offers.
    pub categories: Vec<String>,
    pub created_by: String,
}

/// Issues a key: the stored row and the key itself, which is shown only now.
pub async fn issue_key(db: &DatabaseConnection, new: NewKey) -> anyhow::Result<(api_key::Model, String)> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        anyhow::bail!("--name must be 1 to 100 characters");
    }
    let reporter = match user::Entity::find().filter(user::Column::Username.eq(new.user.as_str())).one(db).await? {
        Some(u) if u.role == Role::GridWorker.as_str() => u.id,
        Some(u) => anyhow::bail!(
            "user {} is a {}: an API key reports as a grid worker, or as an integration identity that is no user",
            u.username,
            u.role
        ),
        None if !new.user.is_empty() && new.user.len() <= 100 && !new.user.chars().any(char::is_whitespace) => {
            new.user.clone()
        }
        None => anyhow::bail!("--user must be a username or an identity without spaces (at most 100 characters)"),
    };
    if !new.area.is_empty() && !matches!(codes::level_of(&new.area), Ok(Level::Province | Level::City | Level::County))
    {
        anyhow::bail!("--scope must be a province, city or county code (6 digits), got {:?}", new.area);
    }
    let offered: Vec<String> = category::Entity::find()
        .filter(category::Column::Petition.eq(false))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.code)
        .collect();
    for c in &new.categories {
        if c.starts_with("petition.") || c == "petition" {
            anyhow::bail!("{c}: petitions cannot be reported through Open311 (they carry personal data)");
        }
        let matches = offered.iter().any(|o| o == c || (c.ends_with('.') && o.starts_with(c.as_str())));
        if !matches {
            anyhow::bail!("--categories: {c:?} is no category code nor a prefix of one (a prefix ends with '.')");
        }
    }
    let rng = ring::rand::SystemRandom::new();
    let mut secret = [0u8; 32];
    let mut id = [0u8; 6];
    ring::rand::SecureRandom::fill(&rng, &mut secret).map_err(|_| anyhow::anyhow!("no randomness for a key"))?;
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(|_| anyhow::anyhow!("no randomness for a key id"))?;
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let row = api_key::Model {
        id: format!("ak_{}", hex::encode(id)),
        name: name.to_owned(),
        key_hash: hash_key(&key),
        key_prefix: key.chars().take(KEY_PREFIX.len() + 4).collect(),
        reporter,
        area: new.area,
        categories: new.categories.join(","),
        created_at: Utc::now(),
        created_by: new.created_by,
        revoked_at: None,
    };
    let stored = row.into_active_model().reset_all().insert(db).await?;
    Ok((stored, key))
}

pub async fn list_keys(db: &DatabaseConnection) -> anyhow::Result<Vec<api_key::Model>> {
    Ok(api_key::Entity::find().order_by_asc(api_key::Column::CreatedAt).all(db).await?)
}

/// Revokes a key at once (every request looks the key up). `Ok(false)`:
/// it was revoked already.
pub async fn revoke_key(db: &DatabaseConnection, id: &str) -> anyhow::Result<(bool, api_key::Model)> {
    let Some(k) = api_key::Entity::find_by_id(id.to_owned()).one(db).await? else {
        anyhow::bail!("no API key {id:?} (see `gridwork apikey list`)");
    };
    if k.revoked_at.is_some() {
        return Ok((false, k));
    }
    let mut m = k.into_active_model();
    m.revoked_at = Set(Some(Utc::now()));
    Ok((true, m.update(db).await?))
}

// ---------------------------------------------------------------- handlers

async fn unknown(req: HttpRequest) -> HttpResponse {
    let format = if req.path().ends_with(".xml") { Format::Xml } else { Format::Json };
    Open311Error::not_found(format!(
        "{} {} is not part of GeoReport v2 here: services, services/{{code}}, requests, requests/{{id}} (.json or .xml)",
        req.method(),
        req.path()
    ))
    .render(format)
}

async fn services(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let format = match Format::parse(&path) {
        Ok(f) => f,
        Err(e) => return e.render(Format::Json),
    };
    respond(
        format,
        async {
            let p = Params::parse(req.query_string())?;
            jurisdiction(&state, &areas, &p).await?;
            let cats = category::Entity::find()
                .filter(category::Column::Petition.eq(false))
                .order_by_asc(category::Column::Code)
                .all(&state.db)
                .await?;
            Ok(Doc::Services(cats.into_iter().map(ServiceOut::from_category).collect()))
        }
        .await,
    )
}

async fn service_definition(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    path: web::Path<String>,
) -> HttpResponse {
    let (code, format) = match Format::split(&path) {
        Ok(s) => s,
        Err(e) => return e.render(Format::Json),
    };
    respond(
        format,
        async {
            let p = Params::parse(req.query_string())?;
            jurisdiction(&state, &areas, &p).await?;
            match category::Entity::find_by_id(code.to_owned()).one(&state.db).await? {
                Some(c) if !c.petition => Ok(Doc::Definition(c.code)),
                Some(_) => Err(Open311Error::not_found(format!(
                    "service_code {code:?}: petitions are not offered through Open311 (they carry personal data \
                     and follow the petition procedure); submit them at a centre"
                ))),
                None => Err(Open311Error::not_found(format!("service_code {code:?} not found; see services.json"))),
            }
        }
        .await,
    )
}

async fn create_request(
    req: HttpRequest,
    state: web::Data<State>,
    areas: web::Data<Areas>,
    ctx: web::Data<Context>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let format = match Format::parse(&path) {
        Ok(f) => f,
        Err(e) => return e.render(Format::Json),
    };
    respond(format, create(&req, &state, &areas, ctx.config.assigner.tolerance_m, &body).await)
}

async fn create(
    req: &HttpRequest,
    state: &State,
    areas: &Areas,
    tolerance_m: f64,
    body: &[u8],
) -> Result<Doc, Open311Error> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("multipart/") {
        return Err(Open311Error::bad_request(
            "media uploads are not accepted: send the form url-encoded and give a photo as media_url",
        ));
    }
    if !content_type.is_empty() && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(Open311Error::bad_request(format!(
            "send the request form-encoded (application/x-www-form-urlencoded), as GeoReport v2 says; got {content_type}"
        )));
    }
    let body = std::str::from_utf8(body).map_err(|_| Open311Error::bad_request("the body is not UTF-8"))?;
    // Parameters in the URL too (some clients send api_key there); the body wins.
    let mut p = Params::parse(req.query_string())?;
    p.0.extend(Params::parse(body)?.0);
    let key = authenticate(state, presented_key(req, &p)).await?;
    let juris = jurisdiction(state, areas, &p).await?;
    rate_limit(state, &key).await?;
    let idempotency = idempotency_key(req, &p)?;

    let code = p.get("service_code").ok_or_else(|| Open311Error::bad_request("service_code is required"))?;
    match category::Entity::find_by_id(code.to_owned()).one(&state.db).await? {
        None => {
            return Err(Open311Error::bad_request(format!(
                "service_code {code:?} is not a service offered here; see services.json"
            )))
        }
        Some(c) if c.petition => {
            return Err(Open311Error::bad_request(format!(
                "service_code {code:?} is a petition (信访): petitions carry personal data and follow the petition \
                 procedure, so they are not accepted through Open311; submit them at a centre"
            )))
        }
        Some(_) => {}
    }
    if !allows_category(&key.categories, code) {
        return Err(Open311Error::forbidden(format!(
            "this api_key may not report service_code {code:?} (it may report: {})",
            key.categories
        )));
    }
    let (Some(lat), Some(lon)) = (p.get("lat"), p.get("long")) else {
        return Err(Open311Error::bad_request(
            "lat and long (WGS-84) are required: gridwork places every request in its grid by its coordinates; \
             address_string or address_id alone is not enough",
        ));
    };
    let (lat, lon) = (coordinate("lat", lat, 90.0)?, coordinate("long", lon, 180.0)?);
    let served = areas.get(&state.db).await?;
    let Some(county) = served.locate(lon, lat, tolerance_m) else {
        return Err(Open311Error::bad_request(format!(
            "lat {lat}, long {lon} lies outside the area this endpoint serves ({})",
            served.summary()
        )));
    };
    if !key.area.is_empty() && !codes::covers(&key.area, county) {
        return Err(Open311Error::forbidden(format!(
            "this api_key may report only in {}; lat {lat}, long {lon} lies in {county}",
            key.area
        )));
    }
    if let Some(j) = &juris {
        if !codes::covers(j, county) {
            return Err(Open311Error::bad_request(format!(
                "lat {lat}, long {lon} lies in {county}, outside jurisdiction_id {j}"
            )));
        }
    }
    let address = p.get("address_string").map(str::to_owned);
    if address.as_ref().is_some_and(|a| a.chars().count() > 500) {
        return Err(Open311Error::bad_request("address_string is longer than 500 characters"));
    }
    let mut description = p.get("description").unwrap_or_default().to_owned();
    if let Some(url) = p.get("media_url") {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
            return Err(Open311Error::bad_request("media_url must be an http(s) URL of at most 2000 characters"));
        }
        if description.is_empty() {
            return Err(Open311Error::bad_request("description is required, also beside a media_url"));
        }
        description.push_str(MEDIA_LINE);
        description.push_str(url);
    }
    // The requester's contact details (first_name, last_name, email, phone,
    // device_id, account_id) are not stored: the integration keeps its own
    // record of who called, and gridwork keeps no personal data it need not.
    // A client's retry is the same request: the same id (from the
    // integration and its key) and the first attempt's time, so the same
    // content hashes the same and the report is stored once.
    let (id, occurred_at) = match &idempotency {
        Some(k) => {
            let id = idempotent_id(&key.name, k);
            (id, mark_idempotent(state, id, &key).await?)
        }
        None => (Uuid::new_v4(), Utc::now()),
    };
    let report = ReportIn {
        id,
        occurred_at,
        location: LocationIn { lat, lon, accuracy_m: None, crs: Crs::Wgs84 },
        address,
        category: code.to_owned(),
        description,
        urgency: Urgency::Normal,
        parties: Vec::new(),
        matter: None,
        received_by: None,
        device_time: None,
        media: Vec::new(),
        resolved_on_spot: None,
    };
    // Marked as Open311's first, so the report is never visible without it
    // (an idempotent request was marked above).
    if idempotency.is_none() {
        api_key_report::Entity::insert(api_key_report::ActiveModel {
            report_id: Set(id.to_string()),
            key_id: Set(key.id.clone()),
            created_at: Set(Utc::now()),
        })
        .exec_without_returning(&state.db)
        .await?;
    }
    let actor = Actor::new(key.reporter.clone(), Role::GridWorker, key.area.clone());
    if let Err(e) = crate::api::submit_one(state, &actor, report, crate::api::Origin::Open311).await {
        // The mark goes only when the report surely was not stored: a 4xx
        // refused it before anything was written. After a 5xx the commit may
        // have happened (an ambiguous commit), and a report without its mark
        // would be an orphan no Open311 client sees; a mark without a report
        // shows nothing, and the client's retry fills it in.
        let refused = e.api().status.is_client_error() && !matches!(e, IntakeError::IdConflict(_));
        if refused && report::Entity::find_by_id(id.to_string()).one(&state.db).await.is_ok_and(|r| r.is_none()) {
            let _ = api_key_report::Entity::delete_by_id(id.to_string()).exec(&state.db).await;
        }
        if let (IntakeError::IdConflict(_), Some(k)) = (&e, &idempotency) {
            return Err(Open311Error::new(
                StatusCode::CONFLICT,
                format!(
                    "Idempotency-Key {k:?} was already used for a different request; use a new key for a new request"
                ),
            ));
        }
        return Err(e.into());
    }
    gridwork_platform::failpoint::hit("open311.after_commit").await;
    tracing::info!(report = %id, key = %key.id, integration = %key.name, "open311 request accepted");
    Ok(Doc::Posted(vec![PostedOut {
        service_request_id: id.to_string(),
        service_notice: SERVICE_NOTICE.to_owned(),
        account_id: None,
    }]))
}

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The client's key for retries: the `Idempotency-Key` header or the
/// `client_request_id` parameter (1 to 255 visible ASCII characters; when
/// both are given they must agree).
fn idempotency_key(req: &HttpRequest, p: &Params) -> Result<Option<String>, Open311Error> {
    let header = match req.headers().get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| Open311Error::bad_request("Idempotency-Key must be visible ASCII characters"))?
                .trim(),
        ),
        None => None,
    };
    let param = p.get("client_request_id");
    let k = match (header, param) {
        (Some(h), Some(c)) if h != c => {
            return Err(Open311Error::bad_request(
                "Idempotency-Key and client_request_id differ: send one of them, or the same value in both",
            ))
        }
        (Some(h), _) => h,
        (None, Some(c)) => c,
        (None, None) => return Ok(None),
    };
    if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(Open311Error::bad_request(format!(
            "Idempotency-Key (or client_request_id) must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )));
    }
    Ok(Some(k.to_owned()))
}

/// The report id of an integration's request with idempotency key `k`: the
/// same for every retry, whichever of the integration's keys (rotated or
/// not) sends it, and never another integration's (a UUID of the custom
/// version 8 from SHA-256; ids without a key stay random, version 4).
fn idempotent_id(integration: &str, k: &str) -> Uuid {
    let digest = Sha256::digest(format!("gridwork open311 request\0{integration}\0{k}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Marks `id` as the integration's request (once, whichever retry comes
/// first) and returns when it was first marked: the time the report is
/// stored with, so every retry carries the same content.
async fn mark_idempotent(state: &State, id: Uuid, key: &api_key::Model) -> Result<DateTime<Utc>, Open311Error> {
    use sea_orm::sea_query::OnConflict;
    let rid = id.to_string();
    api_key_report::Entity::insert(api_key_report::ActiveModel {
        report_id: Set(rid.clone()),
        key_id: Set(key.id.clone()),
        // What every database keeps, so the time reads back the same.
        created_at: Set(chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)),
    })
    .on_conflict(OnConflict::column(api_key_report::Column::ReportId).do_nothing().to_owned())
    .exec_without_returning(&state.db)
    .await?;
    let mark = api_key_report::Entity::find_by_id(rid)
        .one(&state.db)
        .await?
        .ok_or_else(|| Open311Error::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable; try again"))?;
    if mark.key_id != key.id {
        let owner = api_key::Entity::find_by_id(mark.key_id.clone()).one(&state.db).await?;
        if owner.is_none_or(|o| o.name != key.name) {
            return Err(Open311Error::new(StatusCode::CONFLICT, "this Idempotency-Key cannot be used; use another"));
        }
    }
    Ok(mark.created_at)
}

fn coordinate(name: &str, value: &str, limit: f64) -> Result<f64, Open311Error> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && (-limit..=limit).contains(&v) => Ok(v),
        _ => Err(Open311Error::bad_request(format!(
            "{name} must be a WGS-84 number between -{limit} and {limit}, got {value:?}"
        ))),
    }
}

async fn one_request(
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

async fn list_requests(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_text() {
        let mut x = String::new();
        el(&mut x, "d", Some("a<b & \"c\" 'd'\u{1}>"));
        el(&mut x, "n", None);
        assert_eq!(x, "<d>a&lt;b &amp; &quot;c&quot; &apos;d&apos;\u{FFFD}&gt;</d><n/>");
    }

    #[test]
    fn xml_replaces_what_it_cannot_carry() {
        let mut x = String::new();
        el(
            &mut x,
            "d",
            Some("a\u{FFFE}b\u{FFFF}c\u{FDD0}\u{FDEF}\u{1FFFE}\u{10FFFF}\u{0}\t\n\r\u{FDCF}\u{FFFD}\u{10FFFD}"),
        );
        assert_eq!(
            x,
            "<d>a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\t\n\r\u{FDCF}\u{FFFD}\u{10FFFD}</d>"
        );
    }

    #[test]
    fn categories_of_a_key() {
        assert!(allows_category("", "dispute.neighbourhood"));
        assert!(allows_category("environment.,hazard.fire", "environment.pollution"));
        assert!(allows_category("environment.,hazard.fire", "hazard.fire"));
        assert!(!allows_category("environment.,hazard.fire", "hazard.gas"));
        assert!(!allows_category("environment", "environment.pollution"));
    }

    #[test]
    fn served_counties_locate_points_inside_and_near() {
        let square = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]],[[0.4,0.4],[0.6,0.4],[0.6,0.6],[0.4,0.6],[0.4,0.4]]]}"#;
        let area = gridwork_geoindex::geojson_io::parse_geometry(square).unwrap();
        let bbox = area.bounding_rect().unwrap();
        let served = Served {
            loaded: Instant::now(),
            counties: vec!["370100".into()],
            shapes: vec![Shape { county: "370100".into(), area, bbox }],
        };
        assert_eq!(served.locate(0.2, 0.2, 200.0), Some("370100"));
        assert_eq!(served.locate(0.5, 0.5, 200.0), None, "in the hole, 11 km from any edge");
        // 0.001° east of the edge at the equator: about 111 m.
        assert_eq!(served.locate(1.001, 0.5, 200.0), Some("370100"));
        assert_eq!(served.locate(1.001, 0.5, 100.0), None);
    }

    #[test]
    fn formats() {
        assert_eq!(Format::split("dispute.neighbourhood.json").unwrap(), ("dispute.neighbourhood", Format::Json));
        assert_eq!(Format::split("abc.xml").unwrap().1, Format::Xml);
        assert_eq!(Format::split("abc.yaml").unwrap_err().status, StatusCode::NOT_FOUND);
        assert!(Format::split("abc").is_err());
    }
}
