//! Cases as stored: the `cases` table and what a case's detail shows beside
//! it (timeline, reports and their links, supervision notices), the queue
//! list's query with its orderings, and the overdue rule as a query.

use chrono::{DateTime, Utc};
use gridwork_domain::CaseStatus;
use gridwork_storage::entity::{case, case_event, case_report, centre, grid_shape, report, supervision, unit};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Value,
};
use serde::{Deserialize, Serialize};

/// Whether a stored case is overdue at `now`: the domain's one rule
/// ([`CaseStatus::overdue`]); a status it does not know is never overdue.
pub fn is_overdue(m: &case::Model, now: DateTime<Utc>) -> bool {
    CaseStatus::parse(&m.status).is_some_and(|s| s.overdue(m.due_at, m.accept_due_at, now))
}

/// The overdue rule ([`CaseStatus::overdue`]) as a query condition: the
/// clocks run, and the close-out deadline has come or, still unaccepted,
/// the acceptance deadline has. Never NULL, so its negation is exact.
pub fn overdue(now: DateTime<Utc>) -> Condition {
    let running = case::Column::Status.is_in(CaseStatus::RUNNING.map(CaseStatus::as_str));
    let late = Condition::any().add(case::Column::DueAt.lte(now)).add(
        Condition::all()
            .add(case::Column::Status.eq(CaseStatus::Created.as_str()))
            .add(case::Column::AcceptDueAt.is_not_null())
            .add(case::Column::AcceptDueAt.lte(now)),
    );
    Condition::all().add(running).add(late)
}

/// One key of an ordering and its value in a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Text(String),
}

/// An ordering of the queue: its name and its keys (expression, direction).
pub struct Sort {
    pub name: &'static str,
    keys: Vec<(SimpleExpr, Order)>,
}

/// The orderings `GET /v1/cases` offers.
pub const SORTS: [&str; 5] = ["urgent", "due", "priority", "created", "updated"];

/// A time as a key: nanoseconds, so a stored value compares equal to
/// itself whatever precision the database keeps.
fn ts_key(t: DateTime<Utc>) -> Key {
    Key::Int(t.timestamp_nanos_opt().unwrap_or(i64::MAX))
}

impl Sort {
    /// The ordering `name`, judging "overdue" at `at`; `None` if unknown.
    pub fn named(name: &str, at: DateTime<Utc>) -> Option<Sort> {
        let overdue_rank = Expr::case(overdue(at), 0).finally(1);
        let col = |c: case::Column| -> SimpleExpr { Expr::col((case::Entity, c)).into() };
        Some(match name {
            "urgent" => Sort {
                name: "urgent",
                keys: vec![
                    (overdue_rank.into(), Order::Asc),
                    (col(case::Column::Priority), Order::Asc),
                    (col(case::Column::DueAt), Order::Asc),
                    (col(case::Column::Id), Order::Asc),
                ],
            },
            "due" => Sort {
                name: "due",
                keys: vec![(col(case::Column::DueAt), Order::Asc), (col(case::Column::Id), Order::Asc)],
            },
            "priority" => Sort {
                name: "priority",
                keys: vec![
                    (col(case::Column::Priority), Order::Asc),
                    (col(case::Column::CreatedAt), Order::Asc),
                    (col(case::Column::Id), Order::Asc),
                ],
            },
            "created" => Sort {
                name: "created",
                keys: vec![(col(case::Column::CreatedAt), Order::Desc), (col(case::Column::Id), Order::Desc)],
            },
            "updated" => Sort {
                name: "updated",
                keys: vec![(col(case::Column::UpdatedAt), Order::Desc), (col(case::Column::Id), Order::Desc)],
            },
            _ => return None,
        })
    }

    /// How many keys a cursor of this ordering holds.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The key values of `m` under this ordering ("overdue" judged at `at`).
    pub fn keys_of(&self, m: &case::Model, at: DateTime<Utc>) -> Vec<Key> {
        let id = Key::Text(m.id.clone());
        match self.name {
            "urgent" => vec![
                Key::Int(if is_overdue(m, at) { 0 } else { 1 }),
                Key::Int(i64::from(m.priority)),
                ts_key(m.due_at),
                id,
            ],
            "due" => vec![ts_key(m.due_at), id],
            "priority" => vec![Key::Int(i64::from(m.priority)), ts_key(m.created_at), id],
            "created" => vec![ts_key(m.created_at), id],
            _ => vec![ts_key(m.updated_at), id],
        }
    }

    /// Cursor key values as database values of their columns; `None` if
    /// they do not fit this ordering.
    pub fn values(&self, keys: &[Key]) -> Option<Vec<Value>> {
        if keys.len() != self.keys.len() {
            return None;
        }
        let time_key = |i: usize| {
            matches!((self.name, i), ("urgent", 2) | ("due", 0) | ("priority", 1) | ("created", 0) | ("updated", 0))
        };
        Some(
            keys.iter()
                .enumerate()
                .map(|(i, k)| match k {
                    Key::Int(v) if time_key(i) => Value::from(DateTime::from_timestamp_nanos(*v)),
                    Key::Int(v) => Value::from(*v),
                    Key::Text(t) => Value::from(t.clone()),
                })
                .collect(),
        )
    }

    /// Rows strictly after `values` in this ordering.
    fn after(&self, values: &[Value]) -> Condition {
        let keys = &self.keys;
        let mut any = Condition::any();
        for i in 0..keys.len().min(values.len()) {
            let mut all = Condition::all();
            for j in 0..i {
                all = all.add(Expr::expr(keys[j].0.clone()).eq(values[j].clone()));
            }
            let (e, o) = &keys[i];
            all = all.add(match o {
                Order::Desc => Expr::expr(e.clone()).lt(values[i].clone()),
                _ => Expr::expr(e.clone()).gt(values[i].clone()),
            });
            any = any.add(all);
        }
        any
    }
}

/// The queue list's filters, checked and in stored form.
#[derive(Debug, Default)]
pub struct Filter {
    /// Centres whose code starts with this.
    pub centre_prefix: Option<String>,
    /// The lead channel.
    pub channel: Option<&'static str>,
    pub statuses: Option<Vec<&'static str>>,
    pub priority: Option<i32>,
    pub urgency: Option<&'static str>,
    /// Cases located under this code prefix.
    pub grid_prefix: Option<String>,
    /// A category code or a dotted prefix.
    pub category: Option<String>,
    /// Lower-cased words every case's search text must contain.
    pub words: Vec<String>,
    /// Overdue (or not) at the page's instant.
    pub overdue: Option<bool>,
}

/// A page of the queue: the cases `visible` selects that match `f`, in
/// `sort` after the cursor's `after` values, "overdue" judged at `now`.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    visible: Condition,
    f: &Filter,
    sort: &Sort,
    after: Option<&[Value]>,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<case::Model>, DbErr> {
    let mut query = case::Entity::find().filter(visible);
    if let Some(prefix) = &f.centre_prefix {
        query = query.filter(case::Column::Centre.starts_with(prefix.as_str()));
    }
    if let Some(c) = f.channel {
        query = query.filter(case::Column::Channel.eq(c));
    }
    if let Some(statuses) = &f.statuses {
        query = query.filter(case::Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some(p) = f.priority {
        query = query.filter(case::Column::Priority.eq(p));
    }
    if let Some(u) = f.urgency {
        query = query.filter(case::Column::Urgency.eq(u));
    }
    if let Some(prefix) = &f.grid_prefix {
        query = query.filter(case::Column::Grid.starts_with(prefix.as_str()));
    }
    if let Some(cat) = &f.category {
        query = query.filter(
            Condition::any()
                .add(case::Column::Category.eq(cat.as_str()))
                .add(case::Column::Category.starts_with(format!("{cat}."))),
        );
    }
    for word in &f.words {
        query = query.filter(case::Column::Search.contains(word.as_str()));
    }
    if let Some(values) = after {
        query = query.filter(sort.after(values));
    }
    if let Some(wanted) = f.overdue {
        let cond = overdue(now);
        query = query.filter(if wanted { cond } else { cond.not() });
    }
    for (e, o) in &sort.keys {
        query = query.order_by(e.clone(), o.clone());
    }
    query.limit(limit).all(db).await
}

/// What the open cases `visible` selects (under `centre_prefix`) are
/// counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountBy {
    /// The lead channel: the queues of a centre.
    Channel,
    /// The grid the case lies in (empty: in no grid).
    Grid,
}

/// The open cases `visible` selects under `centre_prefix`, counted by
/// `by`: (key, open, overdue at `now`), by key.
pub async fn counts<C: ConnectionTrait>(
    db: &C,
    visible: Condition,
    centre_prefix: Option<&str>,
    by: CountBy,
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, DbErr> {
    use sea_orm::sea_query::Func;
    let column = match by {
        CountBy::Channel => case::Column::Channel,
        CountBy::Grid => case::Column::Grid,
    };
    let open: Vec<&str> = CaseStatus::ALL.into_iter().filter(|s| s.is_open()).map(CaseStatus::as_str).collect();
    let mut query = case::Entity::find().filter(visible).filter(case::Column::Status.is_in(open));
    if let Some(prefix) = centre_prefix {
        query = query.filter(case::Column::Centre.starts_with(prefix));
    }
    query
        .select_only()
        .column(column)
        .column_as(Expr::col(case::Column::Id).count(), "open")
        .column_as(SimpleExpr::from(Func::sum(Expr::case(overdue(now), 1).finally(0))), "overdue")
        .group_by(column)
        .order_by_asc(column)
        .into_tuple::<(String, i64, i64)>()
        .all(db)
        .await
}

/// The case `id`, as stored.
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<case::Model>, DbErr> {
    case::Entity::find_by_id(id.to_owned()).one(db).await
}

/// A new case's row.
pub async fn insert<C: ConnectionTrait>(db: &C, m: &case::Model) -> Result<(), DbErr> {
    m.clone().into_active_model().reset_all().insert(db).await?;
    Ok(())
}

/// Writes every mutable column of `m`, if the row is still at `version`;
/// `false` when it is not (changed concurrently).
pub async fn save<C: ConnectionTrait>(db: &C, m: &case::Model, version: i64) -> Result<bool, DbErr> {
    let mut am = m.clone().into_active_model().reset_all();
    am.id = sea_orm::ActiveValue::Unchanged(m.id.clone());
    let res = case::Entity::update_many()
        .set(am)
        .filter(case::Column::Id.eq(m.id.as_str()))
        .filter(case::Column::Version.eq(version))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The open cases of `grid`, earliest due first.
pub async fn open_in_grid<C: ConnectionTrait>(db: &C, grid: &str, limit: u64) -> Result<Vec<case::Model>, DbErr> {
    let open: Vec<&str> = CaseStatus::ALL.into_iter().filter(|s| s.is_open()).map(CaseStatus::as_str).collect();
    case::Entity::find()
        .filter(case::Column::Grid.eq(grid))
        .filter(case::Column::Status.is_in(open))
        .order_by_asc(case::Column::DueAt)
        .limit(limit)
        .all(db)
        .await
}

/// Whether `centre` is a centre: listed, known from the grids it owns, or
/// a county.
pub async fn centre_known<C: ConnectionTrait>(db: &C, centre: &str) -> Result<bool, DbErr> {
    Ok(centre::Entity::find_by_id(centre.to_owned()).one(db).await?.is_some()
        || grid_shape::Entity::find().filter(grid_shape::Column::Centre.eq(centre)).count(db).await? > 0
        || (centre.len() == 6 && unit::Entity::find_by_id(centre.to_owned()).one(db).await?.is_some()))
}

/// The case's timeline, oldest first.
pub async fn timeline<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<case_event::Model>, DbErr> {
    case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(id))
        .order_by_asc(case_event::Column::Id)
        .all(db)
        .await
}

/// A report (intake's, read through ADR 0002's one cross-service read).
pub async fn report<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<report::Model>, DbErr> {
    report::Entity::find_by_id(id.to_owned()).one(db).await
}

/// The reports linked to the case, earliest first (split ones included).
pub async fn links<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<case_report::Model>, DbErr> {
    case_report::Entity::find()
        .filter(case_report::Column::CaseId.eq(id))
        .order_by_asc(case_report::Column::LinkedAt)
        .all(db)
        .await
}

/// The ids of the reports still linked to the case (not split off).
pub async fn linked_report_ids<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<String>, DbErr> {
    case_report::Entity::find()
        .select_only()
        .column(case_report::Column::ReportId)
        .filter(case_report::Column::CaseId.eq(id))
        .filter(case_report::Column::SplitCaseId.is_null())
        .into_tuple()
        .all(db)
        .await
}

/// The link of `report_id` to case `id`, if it is linked and not split off.
pub async fn open_link<C: ConnectionTrait>(
    db: &C,
    report_id: &str,
    id: &str,
) -> Result<Option<case_report::Model>, DbErr> {
    Ok(case_report::Entity::find_by_id(report_id.to_owned())
        .one(db)
        .await?
        .filter(|l| l.case_id == id && l.split_case_id.is_none()))
}

/// Marks the link of `report_id` as split off into `new_case`.
pub async fn mark_split<C: ConnectionTrait>(db: &C, report_id: &str, new_case: &str) -> Result<(), DbErr> {
    case_report::Entity::update_many()
        .col_expr(case_report::Column::SplitCaseId, Expr::value(new_case.to_owned()))
        .filter(case_report::Column::ReportId.eq(report_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The case's supervision notices, in the order they were raised.
pub async fn notices<C: ConnectionTrait>(db: &C, id: &str) -> Result<Vec<supervision::Model>, DbErr> {
    supervision::Entity::find()
        .filter(supervision::Column::CaseId.eq(id))
        .order_by_asc(supervision::Column::RaisedAt)
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::testing::{case_row, memory_db};
    use chrono::Duration;

    /// The overdue rule and its query agree on a table of cases, both ways.
    #[tokio::test]
    async fn the_overdue_query_is_the_domain_rule() {
        let now = Utc::now();
        let (past, future) = (now - Duration::hours(1), now + Duration::hours(1));
        let db = memory_db().await;
        let mut rows = Vec::new();
        for (i, status) in CaseStatus::ALL.into_iter().enumerate() {
            for (j, (due, accept)) in
                [(future, None), (past, None), (future, Some(past)), (future, Some(future)), (past, Some(past))]
                    .into_iter()
                    .enumerate()
            {
                let mut m = case_row(&format!("{i}-{j}"), "371002001", "people_mediation", "");
                m.status = status.as_str().to_owned();
                m.due_at = due;
                m.accept_due_at = accept;
                insert(&db, &m).await.unwrap();
                rows.push(m);
            }
        }
        let ids = |cond: Condition| {
            let db = &db;
            async move {
                let mut v: Vec<String> =
                    case::Entity::find().filter(cond).all(db).await.unwrap().into_iter().map(|m| m.id).collect();
                v.sort();
                v
            }
        };
        let mut late: Vec<String> = rows.iter().filter(|m| is_overdue(m, now)).map(|m| m.id.clone()).collect();
        late.sort();
        let mut on_time: Vec<String> = rows.iter().filter(|m| !is_overdue(m, now)).map(|m| m.id.clone()).collect();
        on_time.sort();
        assert!(!late.is_empty() && !on_time.is_empty());
        assert_eq!(ids(overdue(now)).await, late);
        assert_eq!(ids(overdue(now).not()).await, on_time);
        // The urgent ordering ranks by the same rule.
        let urgent = Sort::named("urgent", now).unwrap();
        let page = list(&db, Condition::all(), &Filter::default(), &urgent, None, now, 1000).await.unwrap();
        let mut first: Vec<String> = page.iter().take(late.len()).map(|m| m.id.clone()).collect();
        first.sort();
        assert_eq!(first, late);
        for m in &page {
            assert_eq!(urgent.keys_of(m, now)[0], Key::Int(if is_overdue(m, now) { 0 } else { 1 }));
        }
    }

    /// Paging with the keys of each page's last row walks every case once,
    /// in every ordering.
    #[tokio::test]
    async fn keyset_pages_walk_everything_once() {
        let now = Utc::now();
        let db = memory_db().await;
        for i in 0..23 {
            let mut m = case_row(&format!("c{i:02}"), "371002001", "people_mediation", "");
            m.priority = i % 3;
            m.due_at = now + Duration::minutes(i64::from(i % 5) - 2);
            m.created_at = now - Duration::minutes(i64::from(i % 4));
            m.updated_at = now - Duration::seconds(i64::from(i % 2));
            insert(&db, &m).await.unwrap();
        }
        for name in SORTS {
            let sort = Sort::named(name, now).unwrap();
            let mut seen = Vec::new();
            let mut after: Option<Vec<Value>> = None;
            loop {
                let page =
                    list(&db, Condition::all(), &Filter::default(), &sort, after.as_deref(), now, 5).await.unwrap();
                let Some(last) = page.last() else { break };
                after = sort.values(&sort.keys_of(last, now));
                seen.extend(page.iter().map(|m| m.id.clone()));
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!((seen.len(), unique.len()), (23, 23), "{name}");
        }
        assert!(Sort::named("fastest", now).is_none());
        let due = Sort::named("due", now).unwrap();
        assert!(due.values(&[Key::Int(1)]).is_none(), "too few keys");
    }
}
