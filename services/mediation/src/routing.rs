//! Routing rules as data, administered over HTTP: read the current table,
//! replace it with a new version (admin), list versions, and a dry run that
//! answers "where would this report go, and why".
//!
//! Every version is kept (`routing_tables`); replicas pick a new one up at
//! their next supervision tick.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Role;
use gridwork_domain::routing::{RoutingTable, SlaClock};
use gridwork_domain::{Hierarchy, Urgency};
use gridwork_platform::auth::Caller;
use gridwork_platform::ApiError;
use gridwork_storage::entity::{category, grid_shape, routing_table};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, TransactionTrait};
use serde::Deserialize;

use crate::State;

fn db(e: sea_orm::DbErr) -> ApiError {
    ApiError::unavailable(&e)
}

fn workers_only(caller: &Caller) -> Result<(), ApiError> {
    crate::api::require_queue_worker(&caller.0).map_err(|e| ApiError::forbidden(e.to_string()))
}

/// `GET /v1/routing/rules`: the table in force.
pub async fn current(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, ApiError> {
    workers_only(&caller)?;
    let t = state.routing().map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok().json(&*t))
}

/// `GET /v1/routing/versions`: every version stored, newest first.
pub async fn versions(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, ApiError> {
    workers_only(&caller)?;
    let rows =
        routing_table::Entity::find().order_by_desc(routing_table::Column::Version).all(&state.db).await.map_err(db)?;
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
#[derive(Debug, Deserialize)]
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
) -> Result<HttpResponse, ApiError> {
    if caller.0.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin edits the routing rules"));
    }
    let body = gridwork_platform::body::read(&req, body, crate::tasks::body_limit(&req)).await?;
    let new: NewTable = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("invalid routing table: {e}"), "路由规则格式错误")
    })?;
    // Every rule's category must name part of the taxonomy.
    let cats: Vec<String> =
        category::Entity::find().all(&state.db).await.map_err(db)?.into_iter().map(|c| c.code).collect();
    let unknown: Vec<String> = new
        .rules
        .iter()
        .filter(|r| {
            !r.category.is_empty()
                && !cats.iter().any(|c| c == &r.category || c.starts_with(&format!("{}.", r.category)))
        })
        .map(|r| format!("rule {:?}: no category {:?} in the taxonomy", r.id, r.category))
        .collect();
    let txn = state.db.begin().await.map_err(db)?;
    let latest = routing_table::Entity::find()
        .order_by_desc(routing_table::Column::Version)
        .one(&txn)
        .await
        .map_err(db)?
        .map(|r| r.version as u32)
        .unwrap_or(0);
    if new.base_version != latest {
        return Err(ApiError::conflict(
            "stale_version",
            format!("the rules are at version {latest}, not {}: reload and edit again", new.base_version),
            "路由规则已被他人更新，请刷新后重试",
        )
        .with_field("base_version"));
    }
    let table = RoutingTable { version: latest + 1, rules: new.rules, sla: new.sla };
    let mut problems = unknown;
    if let Err(e) = table.validate() {
        problems.insert(0, e.to_string());
    }
    if !problems.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_routing",
            format!("the routing table is not usable: {}", problems.join("; ")),
            "路由规则无效",
        )
        .with_details(problems));
    }
    let body = serde_json::to_string(&table).map_err(|e| ApiError::internal(&e))?;
    routing_table::Model { version: table.version as i32, body, created_at: Utc::now() }
        .into_active_model()
        .reset_all()
        .insert(&txn)
        .await
        .map_err(db)?;
    txn.commit().await.map_err(db)?;
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
#[derive(Debug, Deserialize)]
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
) -> Result<HttpResponse, ApiError> {
    workers_only(&caller)?;
    let body = gridwork_platform::body::read(&req, body, crate::tasks::body_limit(&req)).await?;
    let q: DryRun = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid request body: {e}"), "请求体格式错误"))?;
    let urgency = match q.urgency.as_deref() {
        None => Urgency::Normal,
        Some(u) => Urgency::parse(u).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_field",
                format!("unknown urgency {u:?}: normal, urgent or emergency"),
                "未知的紧急程度",
            )
            .with_field("urgency")
        })?,
    };
    let bad_place = || {
        ApiError::bad_request(
            "invalid_field",
            format!("place {:?} must be a 15-digit grid code or a 6-digit county code", q.place),
            "地点须为网格编码或县级代码",
        )
        .with_field("place")
    };
    let (hierarchy, centre) = match q.place.len() {
        15 => {
            let h = Hierarchy::from_grid_code(&q.place).map_err(|_| bad_place())?;
            let centre = grid_shape::Entity::find()
                .filter(grid_shape::Column::Code.eq(q.place.as_str()))
                .order_by_desc(grid_shape::Column::VersionId)
                .one(&state.db)
                .await
                .map_err(db)?
                .map(|g| g.centre)
                .ok_or_else(|| ApiError::not_found("grid"))?;
            (h, centre)
        }
        6 => (Hierarchy::county_only(&q.place).map_err(|_| bad_place())?, q.place.clone()),
        _ => return Err(bad_place()),
    };
    if !caller.0.covers(&centre) {
        return Err(ApiError::forbidden("that place is outside your scope"));
    }
    let table = state.routing().map_err(|e| ApiError::internal(&e))?;
    let checks = table.explain(&q.category, urgency, &hierarchy);
    let route = table.route(&q.category, urgency, &hierarchy).ok_or_else(|| ApiError::internal(&"no rule matched"))?;
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
