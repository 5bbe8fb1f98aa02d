//! `gridwork-bench faults poison|drain|verify`: the fault suite's own tools
//! (scripts/faults.sh, ADR 0032).
//!
//! - `poison` publishes deliberately bad messages (undecodable bytes, an
//!   unknown schema version) to the pipeline's topics and records where each
//!   landed, so `verify` can tell them from real dead letters.
//! - `drain` waits, bounded, until every consumer group has caught up and no
//!   accepted report is still on its way to a queue.
//! - `verify` checks the delivery promise against what the phones were told:
//!   every report that got a 2xx is in exactly one case or linked to one,
//!   none twice, none stuck; the KPI tallies equal a recount from the event
//!   history; every consumer group's lag is 0; the dead-letter topic holds
//!   exactly the deliberate bad messages.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use gridwork_bus::{EventBus, OutMessage};
use gridwork_events::Topics;
use prost::Message as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};

/// One deliberate bad message: where it is and what is wrong with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Poisoned {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// `undecodable` or `unknown_schema`.
    pub kind: String,
}

/// Publishes `n` bad messages round robin over the topics the pipeline's
/// consumers read (submitted, assigned, case lifecycle), alternating
/// undecodable bytes and an envelope with an unknown schema version.
pub async fn poison(bus: &dyn EventBus, topics: &Topics, n: usize) -> anyhow::Result<Vec<Poisoned>> {
    let targets = [&topics.report_submitted, &topics.report_assigned, &topics.case_lifecycle];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let topic = targets[i % targets.len()];
        let (kind, payload) = if i % 2 == 0 {
            ("undecodable", b"\xff\xfe\xfd not an envelope, deliberately (gridwork faults poison)".to_vec())
        } else {
            let env = gridwork_events::pb::envelope::Envelope {
                event_id: uuid::Uuid::now_v7().to_string(),
                schema: "gridwork.report.submitted.v99".into(),
                producer: "gridwork-faults".into(),
                ..Default::default()
            };
            ("unknown_schema", env.encode_to_vec())
        };
        let d = bus
            .publish(
                topic,
                OutMessage {
                    key: format!("faults-poison-{i}").into_bytes(),
                    payload,
                    headers: vec![("gridwork.faults.poison".into(), kind.into())],
                },
            )
            .await?;
        out.push(Poisoned { topic: topic.clone(), partition: d.partition, offset: d.offset, kind: kind.into() });
    }
    Ok(out)
}

/// How far the pipeline is from done.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Backlog {
    /// Sum of every consumer group's lag.
    pub lag: i64,
    /// Groups with lag, `group topic[partition]=lag`.
    pub lagging: Vec<String>,
    /// Reports without a case or still "submitted"/"assigned".
    pub unqueued: i64,
}

pub async fn backlog(db: &DatabaseConnection, bus: &dyn EventBus, prefix: &str) -> anyhow::Result<Backlog> {
    let topics = Topics::new(prefix);
    let rows = gridwork::dlq::lag(bus, prefix, &topics).await?;
    let lagging = rows
        .iter()
        .filter(|r| r.lag != 0)
        .map(|r| format!("{} {}[{}]={}", r.group, r.topic, r.partition, r.lag))
        .collect();
    let unqueued = count(
        db,
        "SELECT count(*) FROM reports r WHERE (r.case_id IS NULL OR r.status IN ('submitted', 'assigned')) \
         AND NOT EXISTS (SELECT 1 FROM case_reports l WHERE l.report_id = r.id AND l.split_case_id IS NULL)",
    )
    .await?;
    Ok(Backlog { lag: rows.iter().map(|r| r.lag).sum(), lagging, unqueued })
}

/// Waits until the backlog is empty, for at most `limit`; prints progress.
pub async fn drain(db: &DatabaseConnection, bus: &dyn EventBus, prefix: &str, limit: Duration) -> (bool, Backlog) {
    let started = Instant::now();
    let mut last_print: Option<Instant> = None;
    loop {
        let b = match backlog(db, bus, prefix).await {
            Ok(b) => b,
            Err(e) => Backlog { lag: -1, lagging: vec![format!("cannot read the backlog: {e}")], unqueued: -1 },
        };
        if b.lag == 0 && b.unqueued == 0 {
            return (true, b);
        }
        if started.elapsed() >= limit {
            return (false, b);
        }
        if last_print.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            eprintln!(
                "faults drain: {:>4.0} s  lag {}  reports not yet in a queue {}  {}",
                started.elapsed().as_secs_f64(),
                b.lag,
                b.unqueued,
                b.lagging.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            );
            last_print = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row for {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    Ok(db.query_all(Statement::from_string(db.get_database_backend(), sql)).await?)
}

/// What `verify` found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verdict {
    pub ok: bool,
    /// Distinct ids the phones were told were accepted.
    pub reports_accepted: usize,
    /// Accepted, but not in the database.
    pub lost: usize,
    /// Accepted and stored, but in no case and linked to none.
    pub without_case: usize,
    /// In two cases, or in a case and linked to another.
    pub duplicated: usize,
    /// Accepted, and still "submitted" or "assigned".
    pub stuck: usize,
    /// Stored but never confirmed to a phone (a request cut off by a kill;
    /// the phone's retry would find it): allowed.
    pub stored_not_confirmed: usize,
    pub reports_in_database: i64,
    pub cases: i64,
    pub linked: i64,
    /// Cases analytics holds facts for.
    pub kpi_facts: i64,
    /// Day tallies that differ from the recount (`kpi recompute`).
    pub kpi_cells_compared: usize,
    pub kpi_mismatches: usize,
    pub lag: i64,
    pub dead_letters: usize,
    /// Dead letters each deliberate message should leave: one per consumer
    /// group that reads its topic.
    pub dead_letters_expected: usize,
    /// Dead letters that are no deliberate message: real data dead-lettered.
    pub dead_letters_unexpected: usize,
    /// Deliberate messages some group did not dead-letter.
    pub dead_letters_missing: usize,
    /// Further copies of a deliberate dead letter by the same group
    /// (redelivered after a restart; harmless, replay is idempotent).
    pub dead_letter_copies: usize,
    pub deliberate: usize,
    pub findings: Vec<String>,
}

/// Options of `verify`.
pub struct VerifyInput<'a> {
    pub db: &'a DatabaseConnection,
    pub bus: &'a dyn EventBus,
    pub prefix: &'a str,
    pub accepted: Vec<String>,
    pub poisoned: Vec<Poisoned>,
    /// Rebuild the KPI tallies from the event history and compare (analytics
    /// must be stopped: the rebuild rewrites its tables).
    pub recompute: bool,
    pub fcr_window: chrono::Duration,
}

pub async fn verify(input: VerifyInput<'_>) -> anyhow::Result<Verdict> {
    let db = input.db;
    let topics = Topics::new(input.prefix);
    let mut v = Verdict::default();

    // Reports, cases and links as the database has them.
    let mut reports: HashMap<String, (String, Option<String>)> = HashMap::new();
    for r in rows(db, "SELECT id, status, case_id FROM reports").await? {
        reports.insert(r.try_get_by_index(0)?, (r.try_get_by_index(1)?, r.try_get_by_index(2)?));
    }
    let mut cases_of: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows(db, "SELECT report_id, id FROM cases").await? {
        cases_of.entry(r.try_get_by_index(0)?).or_default().push(r.try_get_by_index(1)?);
    }
    let mut links_of: HashMap<String, Vec<String>> = HashMap::new();
    for r in rows(db, "SELECT report_id, case_id FROM case_reports WHERE split_case_id IS NULL").await? {
        links_of.entry(r.try_get_by_index(0)?).or_default().push(r.try_get_by_index(1)?);
    }
    v.reports_in_database = reports.len() as i64;
    v.cases = cases_of.values().map(|c| c.len() as i64).sum();
    v.linked = links_of.values().map(|c| c.len() as i64).sum();

    let accepted: BTreeSet<String> =
        input.accepted.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    v.reports_accepted = accepted.len();
    for id in &accepted {
        let Some((status, case_id)) = reports.get(id) else {
            v.lost += 1;
            note(&mut v, format!("LOST: report {id} was accepted but is not in the database"));
            continue;
        };
        let own = cases_of.get(id).map(Vec::len).unwrap_or(0);
        let linked = links_of.get(id).map(Vec::len).unwrap_or(0);
        match own + linked {
            0 => {
                v.without_case += 1;
                note(&mut v, format!("NO CASE: report {id} ({status}) is in no case and linked to none"));
            }
            1 => {}
            n => {
                v.duplicated += 1;
                note(&mut v, format!("DUPLICATE: report {id} is in {own} case(s) and linked to {linked} ({n} in all)"));
            }
        }
        if matches!(status.as_str(), "submitted" | "assigned") || (case_id.is_none() && linked == 0) {
            v.stuck += 1;
            note(&mut v, format!("STUCK: report {id} is {status:?} with case {case_id:?}"));
        }
    }
    v.stored_not_confirmed = reports.keys().filter(|id| !accepted.contains(*id)).count();

    // KPIs: every case folded, and the live tallies equal a recount.
    v.kpi_facts = count(db, "SELECT count(*) FROM kpi_case_facts").await?;
    if v.kpi_facts != v.cases {
        let what = format!("KPI: analytics holds facts for {} cases, the database has {}", v.kpi_facts, v.cases);
        note(&mut v, what);
    }
    if input.recompute {
        let live = kpi_cells(db).await?;
        gridwork_analytics::recompute(db, &topics.case_lifecycle, input.fcr_window, chrono::Utc::now(), |_| {}).await?;
        let recount = kpi_cells(db).await?;
        let keys: BTreeSet<&(String, String)> = live.keys().chain(recount.keys()).collect();
        v.kpi_cells_compared = keys.len();
        let zero = (0i64, serde_json::Value::Null);
        for k in keys {
            let (a, b) = (live.get(k).unwrap_or(&zero), recount.get(k).unwrap_or(&zero));
            if a.0 != b.0 || !same_tally(&a.1, &b.1) {
                v.kpi_mismatches += 1;
                note(
                    &mut v,
                    format!(
                        "KPI MISMATCH {} {}: live net_open {} {} / recount net_open {} {}",
                        k.0, k.1, a.0, a.1, b.0, b.1
                    ),
                );
            }
        }
    }

    // Every consumer group caught up.
    let lag = gridwork::dlq::lag(input.bus, input.prefix, &topics).await?;
    v.lag = lag.iter().map(|r| r.lag).sum();
    for r in lag.iter().filter(|r| r.lag != 0) {
        note(&mut v, format!("LAG: group {} on {}[{}] is {} behind", r.group, r.topic, r.partition, r.lag));
    }

    // The dead-letter topic holds exactly the deliberate messages, once per
    // group that reads their topic.
    let groups = topics.consumer_groups();
    let mut expected: BTreeSet<(String, String, i32, i64)> = BTreeSet::new();
    for p in &input.poisoned {
        for (g, reads) in &groups {
            if reads.contains(&p.topic) {
                expected.insert((format!("{}{g}", input.prefix), p.topic.clone(), p.partition, p.offset));
            }
        }
    }
    v.deliberate = input.poisoned.len();
    v.dead_letters_expected = expected.len();
    let dead = gridwork::dlq::select(input.bus, &topics, &gridwork::dlq::Selection::default()).await?;
    v.dead_letters = dead.len();
    let mut seen: BTreeMap<(String, String, i32, i64), usize> = BTreeMap::new();
    for d in &dead {
        let k =
            (d.group.clone(), d.source_topic.clone(), d.source_partition.unwrap_or(-1), d.source_offset.unwrap_or(-1));
        if expected.contains(&k) {
            *seen.entry(k).or_default() += 1;
        } else {
            v.dead_letters_unexpected += 1;
            note(&mut v, format!("UNEXPECTED DEAD LETTER {}", d.line()));
        }
    }
    v.dead_letter_copies = seen.values().map(|n| n - 1).sum();
    for k in expected.iter().filter(|k| !seen.contains_key(*k)) {
        v.dead_letters_missing += 1;
        note(&mut v, format!("MISSING DEAD LETTER: group {} never dead-lettered {}[{}]@{}", k.0, k.1, k.2, k.3));
    }

    v.ok = v.lost == 0
        && v.without_case == 0
        && v.duplicated == 0
        && v.stuck == 0
        && v.kpi_facts == v.cases
        && v.kpi_mismatches == 0
        && v.lag == 0
        && v.dead_letters_unexpected == 0
        && v.dead_letters_missing == 0;
    Ok(v)
}

fn note(v: &mut Verdict, what: String) {
    if v.findings.len() < 200 {
        v.findings.push(what);
    }
}

async fn kpi_cells(db: &DatabaseConnection) -> anyhow::Result<HashMap<(String, String), (i64, serde_json::Value)>> {
    let mut out = HashMap::new();
    for r in rows(db, "SELECT jurisdiction, day, net_open, tally FROM kpi_cells").await? {
        let tally: String = r.try_get_by_index(3)?;
        out.insert(
            (r.try_get_by_index(0)?, r.try_get_by_index(1)?),
            (r.try_get_by_index(2)?, serde_json::from_str(&tally).unwrap_or(serde_json::Value::String(tally))),
        );
    }
    Ok(out)
}

/// Equal tallies; a missing cell equals one whose numbers are all zero.
fn same_tally(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    fn zero(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Null => true,
            serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
            serde_json::Value::Array(a) => a.iter().all(zero),
            serde_json::Value::Object(o) => o.values().all(zero),
            _ => false,
        }
    }
    fn norm(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(o) => serde_json::Value::Object(
                o.iter().filter(|(_, x)| !zero(x)).map(|(k, x)| (k.clone(), norm(x))).collect(),
            ),
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(norm).collect()),
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other.clone(),
        }
    }
    norm(a) == norm(b)
}

/// Reads the accepted-ids file (one id per line).
pub fn read_ids(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let ids: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    if distinct.len() != ids.len() {
        eprintln!("faults verify: {} ids appear more than once in {}", ids.len() - distinct.len(), path.display());
    }
    Ok(ids)
}

/// Reads the poison records (`poison --out`, one JSON object per line).
pub fn read_poisoned(path: &std::path::Path) -> anyhow::Result<Vec<Poisoned>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| anyhow::anyhow!("{}: {e}: {l}", path.display())))
        .collect()
}
