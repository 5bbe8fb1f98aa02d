//! Routing rules as data, administered over HTTP: read the current table,
//! replace it with a new version (admin), list versions, and a dry run that
//! answers "where would this report go, and why".
//!
//! Every version is kept (`routing_tables`); replicas pick a new one up at
//! their next supervision tick.

use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::calendar::{Span, Unit};
use gridwork_domain::routing::{RoutingRule, RoutingTable, RuleCheck, SlaClock};
use gridwork_domain::{Channel, Hierarchy, Urgency};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::routing as repo;
use crate::State;

fn internal(e: impl std::fmt::Display) -> MediationError {
    MediationError::Internal(e.to_string())
}

/// One routing rule, as the API reads and writes it (the domain's
/// [`RoutingRule`]). Empty or absent fields match anything; the first rule
/// that matches wins.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: String,
    /// A category code or a dotted prefix of codes (`dispute` matches
    /// `dispute.neighbourhood`); empty matches every category.
    #[serde(default)]
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::urgency_or_null)]
    pub urgency: Option<Urgency>,
    /// An administrative code the report must lie under; empty = anywhere.
    #[serde(default)]
    pub jurisdiction: String,
    #[schema(schema_with = crate::schema::channel)]
    pub channel: Channel,
    /// 1 (highest) to 9.
    #[serde(deserialize_with = "crate::body::integral")]
    #[schema(minimum = 1, maximum = 9)]
    pub priority: u8,
    /// Close-out deadline from creation, in hours, overriding the table's
    /// SLA clocks for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::body::integral_opt")]
    pub sla_hours: Option<u32>,
}

impl From<RuleView> for RoutingRule {
    fn from(r: RuleView) -> Self {
        RoutingRule {
            id: r.id,
            category: r.category,
            urgency: r.urgency,
            jurisdiction: r.jurisdiction,
            channel: r.channel,
            priority: r.priority,
            sla_hours: r.sla_hours,
        }
    }
}

impl From<&RoutingRule> for RuleView {
    fn from(r: &RoutingRule) -> Self {
        RuleView {
            id: r.id.clone(),
            category: r.category.clone(),
            urgency: r.urgency,
            jurisdiction: r.jurisdiction.clone(),
            channel: r.channel,
            priority: r.priority,
            sla_hours: r.sla_hours,
        }
    }
}

/// The close-out clock of cases of one channel and priority (the domain's
/// [`SlaClock`]). Empty fields match anything; the first match wins.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::schema::channel)]
    pub channel: Option<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// E.g. `4 hours`, `3 working days`, `15 days` (a PUT also takes
    /// `{"amount": 3, "unit": "working_days"}`).
    pub within: String,
}

/// Body of `GET /v1/routing/rules`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingTableView {
    pub version: u32,
    /// In order: the first that matches wins; the last matches everything.
    pub rules: Vec<RuleView>,
    /// SLA clocks per channel and priority, in order.
    pub sla: Vec<SlaView>,
}

impl From<&RoutingTable> for RoutingTableView {
    fn from(t: &RoutingTable) -> Self {
        RoutingTableView {
            version: t.version,
            rules: t.rules.iter().map(RuleView::from).collect(),
            sla: t
                .sla
                .iter()
                .map(|c| SlaView { channel: c.channel, priority: c.priority, within: c.within.to_string() })
                .collect(),
        }
    }
}

/// `GET /v1/routing/rules`: the table in force.
#[utoipa::path(get, path = "/v1/routing/rules", tag = "routing", operation_id = "routing_rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The routing table in force", body = RoutingTableView),
        Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn current(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    access::require_queue_worker(&caller.0)?;
    let t = state.routing().map_err(internal)?;
    Ok(HttpResponse::Ok().json(RoutingTableView::from(&*t)))
}

/// One stored version of the routing table.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingVersion {
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// How many rules it has.
    pub rules: usize,
}

/// Body of `GET /v1/routing/versions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingVersions {
    /// Newest first.
    pub items: Vec<RoutingVersion>,
}

/// `GET /v1/routing/versions`: every version stored, newest first.
#[utoipa::path(get, path = "/v1/routing/versions", tag = "routing", operation_id = "routing_versions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every stored version, newest first", body = RoutingVersions),
        Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn versions(state: web::Data<State>, caller: Caller) -> Result<HttpResponse, MediationError> {
    access::require_queue_worker(&caller.0)?;
    let rows = repo::versions(&state.db).await?;
    let items = rows
        .into_iter()
        .map(|r| RoutingVersion {
            rules: serde_json::from_str::<RoutingTable>(&r.body).map(|t| t.rules.len()).unwrap_or(0),
            version: r.version,
            created_at: r.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(RoutingVersions { items }))
}

/// Body of `PUT /v1/routing/rules`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTable {
    /// The version this edit was based on; another admin's newer version
    /// makes it 409.
    #[serde(deserialize_with = "crate::body::integral")]
    pub base_version: u32,
    /// In order; the last must match everything (empty category, urgency
    /// and jurisdiction), ids unique, each with a clock (its `sla_hours` or
    /// a catch-all SLA clock).
    pub rules: Vec<RuleView>,
    #[serde(default)]
    pub sla: Vec<SlaIn>,
}

/// An SLA clock of a new table (the domain's [`SlaClock`]).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SlaIn {
    #[serde(default)]
    #[schema(schema_with = crate::schema::channel_or_null)]
    channel: Option<Channel>,
    #[serde(default, deserialize_with = "crate::body::integral_opt")]
    #[schema(minimum = 0, maximum = 255)]
    priority: Option<u8>,
    /// `<n> hours`, `<n> days`, `<n> calendar days` or `<n> working days`,
    /// or `{"amount": n, "unit": "working_days"}`.
    #[schema(value_type = String)]
    within: SpanIn,
}

/// A span as text or as its parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SpanIn {
    Text(String),
    Parts {
        #[serde(deserialize_with = "crate::body::integral")]
        amount: u32,
        unit: Unit,
    },
}

impl TryFrom<SlaIn> for SlaClock {
    type Error = MediationError;

    fn try_from(c: SlaIn) -> Result<Self, MediationError> {
        let within = match c.within {
            SpanIn::Text(t) => {
                t.parse::<Span>().map_err(|e| bad("invalid_field", "sla.within", e.to_string(), "时限格式无效"))?
            }
            SpanIn::Parts { amount, unit } => Span { amount, unit },
        };
        Ok(SlaClock { channel: c.channel, priority: c.priority, within })
    }
}

/// Body of `PUT /v1/routing/rules`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingStored {
    /// The new version, now in force.
    pub version: u32,
}

/// `PUT /v1/routing/rules` (admin): stores the table as the next version and
/// puts it in force. Every replica picks it up at its next supervision tick.
#[utoipa::path(put, path = "/v1/routing/rules", tag = "routing", operation_id = "replace_routing_rules",
    request_body = NewTable,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and in force", body = RoutingStored),
        BadRequest, Unauthorized, Forbidden, Conflict, PayloadTooLarge, Unprocessable, Unavailable,
    ))]
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
    let sla = new.sla.into_iter().map(SlaClock::try_from).collect::<Result<_, _>>()?;
    let table =
        RoutingTable { version: latest + 1, rules: new.rules.into_iter().map(RoutingRule::from).collect(), sla };
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
    Ok(HttpResponse::Ok().json(RoutingStored { version }))
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// A category code.
    pub category: String,
    /// Default `normal`.
    #[serde(default)]
    #[schema(schema_with = crate::schema::urgency_or_null)]
    pub urgency: Option<String>,
    /// The grid the report lies in (see `GET /v1/grids/locate`), or a
    /// county code for a report outside every grid.
    #[schema(pattern = "^([0-9]{4}(0[1-9]|[1-9][0-9])|[0-9]{15})$")]
    pub place: String,
    /// When the report would arrive (default now; 1970–2199): the
    /// deadlines count from it.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// One rule weighed by the dry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleChecked {
    pub rule_id: String,
    pub matched: bool,
    /// Why it did not match (empty when it did).
    pub why_not: Vec<String>,
}

impl From<RuleCheck> for RuleChecked {
    fn from(c: RuleCheck) -> Self {
        RuleChecked { rule_id: c.rule_id, matched: c.matched, why_not: c.why_not }
    }
}

/// Body of `POST /v1/routing/dry-run`'s answer: where the report would go,
/// why, and by when it would be due.
#[derive(Debug, Serialize, ToSchema)]
pub struct DryRunResult {
    /// The centre whose queue would hold the case.
    pub centre: String,
    #[schema(schema_with = crate::schema::channel)]
    pub channel: &'static str,
    pub channel_zh: &'static str,
    pub priority: u8,
    /// The rule that matched.
    pub rule: String,
    pub rules_version: u32,
    /// The close-out clock, e.g. `15 days`.
    pub close_out_within: String,
    /// What decided the clock: `rule <id>`, `sla <index>`, or 信访工作条例
    /// for a petition.
    pub clock_source: String,
    pub due_at: DateTime<Utc>,
    /// A petition's acceptance deadline.
    pub accept_due_at: Option<DateTime<Utc>>,
    /// The report lies in no grid: it would go to the county's triage.
    pub triage: bool,
    /// Each rule up to the first match, and why it did or did not match.
    pub checked: Vec<RuleChecked>,
}

/// `POST /v1/routing/dry-run`: where a report would go and why, with the
/// deadline it would get. Changes nothing.
#[utoipa::path(post, path = "/v1/routing/dry-run", tag = "routing", operation_id = "routing_dry_run",
    request_body = DryRun,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Where it would go, and why", body = DryRunResult),
        BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Unavailable,
    ))]
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
    // The calendar and the clocks count within years people live in.
    if !(1970..2200).contains(&chrono::Datelike::year(&now)) {
        return Err(bad("invalid_field", "at", "at must lie between 1970 and 2199", "时间须在 1970 至 2199 年之间"));
    }
    let petition = state.petition_categories.contains(&q.category);
    let clocks = state.clocks.open(&route, petition, now);
    Ok(HttpResponse::Ok().json(DryRunResult {
        centre,
        channel: route.channel.as_str(),
        channel_zh: route.channel.name_zh(),
        priority: route.priority,
        rule: route.rule_id.clone(),
        rules_version: route.rules_version,
        close_out_within: clocks.within.to_string(),
        clock_source: if petition { "信访工作条例".to_owned() } else { route.sla_source.clone() },
        due_at: clocks.due_at,
        accept_due_at: clocks.accept_due_at,
        triage: hierarchy.grid.is_empty(),
        checked: checks.into_iter().map(RuleChecked::from).collect(),
    }))
}
