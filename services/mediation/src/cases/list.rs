//! `GET /v1/cases`: the queues the caller may see, with filters, sort and
//! keyset pagination. The cursor names its ordering, the instant "overdue"
//! was judged at on the first page (so pages do not shift under the
//! reader), and the keys of the last row.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::{codes, CaseStatus, Channel, Urgency};
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, Unauthorized, Unavailable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::view::{view, CaseView};
use crate::access;
use crate::error::{bad, MediationError};
use crate::repo::cases::{self as repo, Filter, Key, Sort};
use crate::State;

/// Query of `GET /v1/cases`: every filter is optional and they combine.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An administrative code under the caller's scope (a centre's, or any
    /// unit's): cases of the centres under it. Default: the caller's scope.
    #[serde(default)]
    #[param(pattern = r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub centre: Option<String>,
    /// The lead channel.
    #[serde(default)]
    #[param(schema_with = crate::schema::channel)]
    pub channel: Option<String>,
    /// One status or several, comma-separated; `open` for every open one.
    #[serde(default)]
    #[param(schema_with = crate::schema::statuses)]
    pub status: Option<String>,
    /// Cases of this priority (1 highest).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Cases of this urgency (`emergency`: what the console's alert shows
    /// again after a reload).
    #[serde(default)]
    #[param(schema_with = crate::schema::urgency)]
    pub urgency: Option<String>,
    /// Only overdue cases (`true`), or only those that are not (`false`).
    #[serde(default)]
    pub overdue: Option<bool>,
    /// A grid, community or street code (or any unit's): cases located
    /// under it.
    #[serde(default)]
    #[param(pattern = r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub grid: Option<String>,
    /// A category code or a dotted prefix (`dispute`).
    #[serde(default)]
    #[param(max_length = 200, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub category: Option<String>,
    /// Words of the report's address or description, or of the category;
    /// every word must occur.
    #[serde(default)]
    #[param(max_length = 200, pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$")]
    pub text: Option<String>,
    /// `urgent` (default: overdue first, then priority, then deadline),
    /// `due`, `priority`, `created` (newest first), `updated` (latest first).
    #[serde(default)]
    #[param(schema_with = crate::schema::sort)]
    pub sort: Option<String>,
    /// Page size, 1–200 (default 50; larger is read as 200, 0 as 1).
    #[serde(default)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page, with the same filters and
    /// sort.
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
}

/// A page's continuation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort the cursor belongs to.
    s: String,
    /// The instant "overdue" was judged at on the first page, in
    /// microseconds.
    t: i64,
    k: Vec<Key>,
}

impl Cursor {
    pub fn encode(&self) -> Option<String> {
        serde_json::to_vec(self).ok().map(|b| URL_SAFE_NO_PAD.encode(b))
    }

    /// The cursor in `text`, if it is one of ordering `sort` (with its
    /// number of keys).
    pub fn decode(text: &str, sort: &Sort) -> Result<Cursor, MediationError> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid_cursor())?;
        let cur: Cursor = serde_json::from_slice(&raw).map_err(|_| invalid_cursor())?;
        if cur.s != sort.name || cur.k.len() != sort.key_count() {
            return Err(invalid_cursor());
        }
        Ok(cur)
    }

    /// The instant the first page judged "overdue" at.
    pub fn at(&self) -> Result<DateTime<Utc>, MediationError> {
        DateTime::from_timestamp_micros(self.t).ok_or_else(invalid_cursor)
    }
}

fn invalid_cursor() -> MediationError {
    bad("invalid_cursor", "cursor", "the cursor is not valid for this query", "分页游标无效")
}

fn sort_named(name: &str, at: DateTime<Utc>) -> Result<Sort, MediationError> {
    Sort::named(name, at).ok_or_else(|| {
        bad(
            "invalid_sort",
            "sort",
            format!("unknown sort {name:?}: urgent, due, priority, created or updated"),
            "未知的排序方式",
        )
    })
}

/// The prefix every code under `code` starts with (400 `invalid_filter`
/// naming `field` when it is no administrative code).
pub(super) fn code_prefix(code: &str, field: &str) -> Result<String, MediationError> {
    codes::significant_prefix(code).map(str::to_owned).map_err(|_| {
        bad("invalid_filter", field, format!("{code:?} is not an administrative code"), "行政区划代码无效")
    })
}

/// A free-text filter: at most 200 characters, none of them control
/// characters (the database could not compare with a NUL byte).
fn check_text(field: &str, value: &str) -> Result<(), MediationError> {
    gridwork_domain::text::check_text(field, value, MAX_FILTER_CHARS)
        .map_err(|e| bad("invalid_filter", field, e.en, e.zh))
}

/// The longest free-text filter.
const MAX_FILTER_CHARS: usize = 200;

/// The query's filters, checked, in stored form (the overdue one is
/// judged when the page's instant is known).
fn filter(actor: &Actor, q: &ListQuery) -> Result<Filter, MediationError> {
    let mut f = Filter::default();
    match &q.centre {
        Some(centre) => {
            let prefix = code_prefix(centre, "centre")?;
            access::require_covers(actor, centre, "that centre is outside your scope")?;
            f.centre_prefix = Some(prefix);
        }
        // By default the caller's scope (which for everyone but an admin
        // is what they may see anyway).
        None if !actor.scope.is_empty() => {
            let prefix = codes::significant_prefix(&actor.scope)
                .map_err(|_| MediationError::Forbidden("your token's scope is not an administrative code"))?;
            f.centre_prefix = Some(prefix.to_owned());
        }
        None => {}
    }
    if let Some(ch) = &q.channel {
        let c = Channel::parse(ch)
            .ok_or_else(|| bad("invalid_filter", "channel", format!("unknown channel {ch:?}"), "未知的渠道"))?;
        f.channel = Some(c.as_str());
    }
    if let Some(st) = &q.status {
        let mut wanted = Vec::new();
        for s in st.split(',') {
            if s == "open" {
                wanted.extend(CaseStatus::ALL.into_iter().filter(|s| s.is_open()));
            } else {
                wanted.push(
                    CaseStatus::parse(s).ok_or_else(|| {
                        bad("invalid_filter", "status", format!("unknown status {s:?}"), "未知的状态")
                    })?,
                );
            }
        }
        f.statuses = Some(wanted.into_iter().map(CaseStatus::as_str).collect());
    }
    f.priority = q.priority;
    if let Some(u) = &q.urgency {
        let u = Urgency::parse(u)
            .ok_or_else(|| bad("invalid_filter", "urgency", format!("unknown urgency {u:?}"), "未知的紧急程度"))?;
        f.urgency = Some(u.as_str());
    }
    if let Some(g) = &q.grid {
        f.grid_prefix = Some(code_prefix(g, "grid")?);
    }
    if let Some(category) = &q.category {
        check_text("category", category)?;
        f.category = Some(category.clone());
    }
    if let Some(text) = &q.text {
        check_text("text", text)?;
        f.words = text.split_whitespace().map(str::to_lowercase).collect();
    }
    f.overdue = q.overdue;
    Ok(f)
}

/// Body of `GET /v1/cases`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseView>,
    /// The next page's cursor; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/cases`: the queues the caller may see (dispatchers their
/// scope's, mediators their channels' cases), with filters, sort and keyset
/// pagination.
#[utoipa::path(get, path = "/v1/cases", tag = "cases", operation_id = "list_cases", params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of cases", body = CasePage, links(
            ("detail" = (operation_id = "case_detail", parameters(("id" = "$response.body#/items/0/id")),
                description = "The first case's detail")),
        )),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn list(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, MediationError> {
    let actor = caller.0;
    access::require_queue_worker(&actor)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let f = filter(&actor, &q)?;
    let sort_name = q.sort.as_deref().unwrap_or("urgent");
    let mut now = Utc::now();
    let mut sort = sort_named(sort_name, now)?;
    let mut after = None;
    if let Some(c) = &q.cursor {
        let cur = Cursor::decode(c, &sort)?;
        now = cur.at()?;
        sort = sort_named(sort_name, now)?;
        after = Some(sort.values(&cur.k).ok_or_else(invalid_cursor)?);
    }
    let rows = repo::list(&state.db, access::visible_cases(&actor), &f, &sort, after.as_deref(), now, limit).await?;
    let next = if rows.len() as u64 == limit {
        rows.last().and_then(|m| {
            Cursor { s: sort.name.to_owned(), t: now.timestamp_micros(), k: sort.keys_of(m, now) }.encode()
        })
    } else {
        None
    };
    let items: Vec<CaseView> = rows.into_iter().map(|m| view(m, Utc::now())).collect();
    Ok(HttpResponse::Ok().json(CasePage { items, next_cursor: next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridwork_domain::auth::Role;

    fn code(e: MediationError) -> (&'static str, Option<String>) {
        let a = e.api();
        (a.code, a.field)
    }

    #[test]
    fn a_cursor_round_trips_and_belongs_to_its_ordering() {
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
        let urgent = Sort::named("urgent", now).unwrap();
        let cur = Cursor {
            s: "urgent".into(),
            t: now.timestamp_micros(),
            k: vec![Key::Int(0), Key::Int(3), Key::Int(1_700_000_000_000_000_000), Key::Text("c1".into())],
        };
        let text = cur.encode().unwrap();
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {text}");
        let back = Cursor::decode(&text, &urgent).unwrap();
        assert_eq!(back, cur);
        assert_eq!(back.at().unwrap(), now);
        assert!(urgent.values(&back.k).is_some());
        // Another ordering, too few keys, or not a cursor at all.
        let due = Sort::named("due", now).unwrap();
        assert_eq!(code(Cursor::decode(&text, &due).unwrap_err()), ("invalid_cursor", Some("cursor".into())));
        let short = Cursor { k: vec![Key::Int(0)], ..cur.clone() }.encode().unwrap();
        assert!(Cursor::decode(&short, &urgent).is_err());
        assert!(Cursor::decode("not a cursor!", &urgent).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode(b"[1,2]"), &urgent).is_err());
    }

    #[test]
    fn filters_are_checked() {
        let d = Actor::new("d", Role::Dispatcher, "371002001");
        let q = |json: serde_json::Value| -> ListQuery { serde_json::from_value(json).unwrap() };
        let f = filter(&d, &q(serde_json::json!({}))).unwrap();
        assert_eq!(f.centre_prefix.as_deref(), Some("371002001"), "the caller's scope by default");
        let f = filter(&d, &q(serde_json::json!({"status": "open", "text": "楼上 Noise", "grid": "371002001001"})))
            .unwrap();
        assert_eq!(f.statuses.map(|s| s.len()), Some(7));
        assert_eq!(f.words, ["楼上", "noise"]);
        assert_eq!(f.grid_prefix.as_deref(), Some("371002001001"));
        let err = |json| filter(&d, &q(json)).map(|_| ()).unwrap_err();
        assert_eq!(code(err(serde_json::json!({"centre": "371082001"}))), ("forbidden", None));
        assert_eq!(code(err(serde_json::json!({"centre": "x"}))), ("invalid_filter", Some("centre".into())));
        assert_eq!(code(err(serde_json::json!({"channel": "x"}))), ("invalid_filter", Some("channel".into())));
        assert_eq!(code(err(serde_json::json!({"status": "open,x"}))), ("invalid_filter", Some("status".into())));
        assert_eq!(code(sort_named("fastest", Utc::now()).map(|_| ()).unwrap_err()).0, "invalid_sort");
        let admin = Actor::new("root", Role::Admin, "");
        assert_eq!(filter(&admin, &q(serde_json::json!({}))).unwrap().centre_prefix, None);
    }
}
