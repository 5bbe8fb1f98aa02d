//! Routing rules as data, administered over HTTP: read the current table,
//! replace it with a new version (admin), list versions, and a dry run that
//! answers "where would this report go, and why".
//!
//! Every version is kept (`routing_tables`); replicas pick a new one up at
//! their next supervision tick.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::routing::{RoutingTable, SlaClock};
use gridwork_domain::{Hierarchy, Urgency};
use gridwork_platform::auth::Caller;
use sea_orm::TransactionTrait;
use serde::Deserialize;

use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::routing as repo;
use crate::State;

fn internal(e: impl std::fmt::Display) -> MediationError {
    MediationError::Internal(e.to_string())
}

/// `GET /v1/routing/rules`: the table in force.
pub async fn current(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    access::require_queue_worker(&caller.0)?;
    let t = state.routing().map_err(internal)?;
    Ok(HttpResponse::Ok().json(&*t))
}

/// `GET /v1/routing/versions`: every version stored, newest first.
pub async fn versions(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    access::require_queue_worker(&caller.0)?;
    let rows = repo::versions(&state.db).await?;
    let items: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let rules = serde_json::from_str::<RoutingTable>(&r.body).map(|t| t.rules.len()).unwrap_or(0);
            serde_json::json!({"version": r.version, "created_at": r.created_at, "rules": rules})
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": items})))
}

/// Body of `PUT /v1/routing/rules`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTable {
    /// The version this edit was based on; another admin's newer version
    /// makes it 409.
    pub base_version: u32,
    pub rules: Vec<gridwork_domain::routing::RoutingRule>,
    #[serde(default)]
    pub sla: Vec<SlaClock>,
}

/// `PUT /v1/routing/rules` (admin): stores the table as the next version and
/// puts it in force.
pub async fn replace(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    access::require_admin(&caller.0, "only an admin edits the routing rules")?;
    let body = crate::body::read(&req, body).await?;
    let new: NewTable = crate::body::json_or_invalid(&body, "routing table", "路由规则格式错误", false)?;
    // Every rule's category must name part of the taxonomy.
    let cats = repo::category_codes(&state.db).await?;
    let unknown: Vec<String> = new
        .rules
        .iter()
        .filter(|r| {
            !r.category.is_empty()
                && !cats.iter().any(|c| c == &r.category || c.starts_with(&format!("{}.", r.category)))
        })
        .map(|r| format!("rule {:?}: no category {:?} in the taxonomy", r.id, r.category))
        .collect();
    let txn = state.db.begin().await?;
    let latest = repo::latest_version(&txn).await?;
    if new.base_version != latest {
        return Err(MediationError::StaleRules { latest, base: new.base_version });
    }
    let table = RoutingTable { version: latest + 1, rules: new.rules, sla: new.sla };
    let mut problems = unknown;
    if let Err(e) = table.validate() {
        problems.insert(0, e.to_string());
    }
    if !problems.is_empty() {
        return Err(MediationError::InvalidRouting(problems));
    }
    let body = serde_json::to_string(&table).map_err(internal)?;
    repo::insert(&txn, table.version, body).await?;
    txn.commit().await?;
    tracing::info!(version = table.version, admin = %caller.0.id, rules = table.rules.len(), "routing rules replaced");
    let version = table.version;
    if let Ok(mut w) = state.routing.write() {
        *w = Arc::new(table);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"version": version})))
}

/// Puts the newest stored table in force if it is newer than ours.
pub async fn refresh(state: &State) -> anyhow::Result<()> {
    let have = state.routing().map(|t| t.version).unwrap_or(0);
    if let Some(t) = crate::newer_routing(&state.db, have).await? {
        tracing::info!(version = t.version, "routing rules updated");
        if let Ok(mut w) = state.routing.write() {
            *w = Arc::new(t);
        }
    }
    Ok(())
}

/// Body of `POST /v1/routing/dry-run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    pub category: String,
    #[serde(default)]
    pub urgency: Option<String>,
    /// The grid the report lies in (see `GET /v1/grids/locate`), or a
    /// county code for a report outside every grid.
    pub place: String,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// `POST /v1/routing/dry-run`: where a report would go and why, with the
/// deadline it would get. Changes nothing.
pub async fn dry_run(
    state: web::Data<State>,
    caller: Caller,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, MediationError> {
    access::require_queue_worker(&caller.0)?;
    let body = crate::body::read(&req, body).await?;
    let q: DryRun = crate::body::json_or_invalid(&body, "request body", "请求体格式错误", false)?;
    let urgency = match q.urgency.as_deref() {
        None => Urgency::Normal,
        Some(u) => Urgency::parse(u).ok_or_else(|| {
            bad(
                "invalid_field",
                "urgency",
                format!("unknown urgency {u:?}: normal, urgent or emergency"),
                "未知的紧急程度",
            )
        })?,
    };
    let bad_place = || {
        bad(
            "invalid_field",
            "place",
            format!("place {:?} must be a 15-digit grid code or a 6-digit county code", q.place),
            "地点须为网格编码或县级代码",
        )
    };
    let (hierarchy, centre) = match q.place.len() {
        15 => {
            let h = Hierarchy::from_grid_code(&q.place).map_err(|_| bad_place())?;
            let centre = repo::grid_centre(&state.db, &q.place).await?.ok_or(MediationError::NotFound("grid"))?;
            (h, centre)
        }
        6 => (Hierarchy::county_only(&q.place).map_err(|_| bad_place())?, q.place.clone()),
        _ => return Err(bad_place()),
    };
    access::require_covers(&caller.0, &centre, "that place is outside your scope")?;
    let table = state.routing().map_err(internal)?;
    let checks = table.explain(&q.category, urgency, &hierarchy);
    let route = table.route(&q.category, urgency, &hierarchy).ok_or_else(|| internal("no rule matched"))?;
    let now = q.at.unwrap_or_else(Utc::now);
    let petition = state.petition_categories.contains(&q.category);
    let clocks = state.clocks.open(&route, petition, now);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "centre": centre,
        "channel": route.channel.as_str(),
        "channel_zh": route.channel.name_zh(),
        "priority": route.priority,
        "rule": route.rule_id,
        "rules_version": route.rules_version,
        "close_out_within": clocks.within.to_string(),
        "clock_source": if petition { "信访工作条例".to_owned() } else { route.sla_source.clone() },
        "due_at": clocks.due_at,
        "accept_due_at": clocks.accept_due_at,
        "triage": hierarchy.grid.is_empty(),
        "checked": checks,
    })))
}
