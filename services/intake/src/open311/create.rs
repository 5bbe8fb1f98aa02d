//! `POST requests.{json,xml}` (form-encoded, with an `api_key`): a report
//! stored through the same path as `POST /v1/reports`
//! ([`crate::reports::submit::submit_one`], the group-commit batcher, the
//! outbox), so it gets a grid and a case like any other. The report id is
//! the `service_request_id`: random (UUID v4), or derived from the
//! integration and its `Idempotency-Key` so that retries are one request
//! (ADR 0027).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use actix_web::{web, HttpRequest};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::codes;
use gridwork_domain::report::{Crs, Urgency};
use gridwork_platform::Context;
use gridwork_storage::entity::{api_key, api_key_report, category, report};
use sea_orm::{EntityTrait, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::areas::{jurisdiction, Areas};
use super::documents::{respond, Doc, PostedOut};
use super::format::Format;
use super::keys::{allows_category, authenticate, rate_limit};
use super::params::{presented_key, Params};
use super::MEDIA_LINE;
use crate::error::{IntakeError, Open311Error};
use crate::reports::{LocationIn, ReportIn};
use crate::State;

const SERVICE_NOTICE: &str = "received: gridwork places it in its grid and the comprehensive-management centre \
                              that owns the grid handles it (已受理，将分派至所属网格及综治中心办理)";

pub(super) async fn create_request(
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
    if let Err(e) =
        crate::reports::submit::submit_one(state, &actor, report, crate::reports::submit::Origin::Open311).await
    {
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
