//! Governance KPIs, derived from case lifecycle events alone.
//!
//! [`CaseFacts`] is what the KPIs need to know of one case, folded from its
//! events; [`aggregate`] turns the facts of a jurisdiction into one row per
//! period. Definitions are in `docs/kpis.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case::{CaseEventKind, CaseStatus, Channel, Satisfaction};
use crate::codes::Hierarchy;
use crate::petition::{PetitionClass, PetitionInfo};

/// Periods are calendar periods in China Standard Time (UTC+8).
pub fn china_offset() -> FixedOffset {
    match FixedOffset::east_opt(8 * 3600) {
        Some(o) => o,
        None => unreachable!("+08:00 is a valid offset"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            "quarter" => Period::Quarter,
            "year" => Period::Year,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The first day of the period containing `date`.
    pub fn start_of(self, date: NaiveDate) -> NaiveDate {
        let first = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(date);
        match self {
            Period::Day => date,
            Period::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
            Period::Month => first(date.year(), date.month()),
            Period::Quarter => first(date.year(), (date.month() - 1) / 3 * 3 + 1),
            Period::Year => first(date.year(), 1),
        }
    }

    /// The bucket (period start, China time) of an instant.
    pub fn bucket(self, at: DateTime<Utc>) -> NaiveDate {
        self.start_of(at.with_timezone(&china_offset()).date_naive())
    }
}

/// What the KPIs need to know of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFacts {
    pub case_id: Uuid,
    pub hierarchy: Hierarchy,
    pub category: String,
    pub channel: Channel,
    pub status: CaseStatus,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub satisfaction: Option<Satisfaction>,
    pub petition: Option<PetitionInfo>,
    /// Moved to a higher level before being closed where first received.
    pub transferred_up: bool,
    /// When a review request, repeat petition, escalation or reopen on the
    /// same matter disqualified this petition from first-contact resolution.
    pub disqualified_at: Option<DateTime<Utc>>,
}

impl CaseFacts {
    /// Folds one lifecycle event into the facts. Applying the same event
    /// twice gives the same facts.
    pub fn apply(
        &mut self,
        kind: CaseEventKind,
        at: DateTime<Utc>,
        status: CaseStatus,
        satisfaction: Option<Satisfaction>,
    ) {
        self.status = status;
        match kind {
            CaseEventKind::Accepted => {
                self.accepted_at.get_or_insert(at);
            }
            CaseEventKind::Resolved => self.resolved_at = Some(at),
            CaseEventKind::Closed => self.closed_at = Some(at),
            CaseEventKind::CallbackRecorded => self.satisfaction = satisfaction,
            _ => {}
        }
    }

    pub fn is_first_time_petition(&self) -> bool {
        matches!(&self.petition, Some(p) if p.class == PetitionClass::FirstTime)
    }

    /// Whether a later petition on the same matter, raised at `at`,
    /// disqualifies this one: it came before the answer or within the
    /// observation window after it.
    pub fn disqualified_by(&self, at: DateTime<Utc>, window: Duration) -> bool {
        match self.resolved_at {
            None => true,
            Some(answered) => at <= answered + window,
        }
    }

    pub fn closed_on_time(&self) -> Option<bool> {
        self.closed_at.map(|c| c <= self.due_at)
    }
}

/// A rate with its parts, so every figure can be checked by hand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
    /// `numerator / denominator`, absent when the denominator is 0.
    pub rate: Option<f64>,
}

impl Ratio {
    fn new(numerator: u64, denominator: u64) -> Self {
        let rate = (denominator > 0).then(|| numerator as f64 / denominator as f64);
        Ratio { numerator, denominator, rate }
    }
}

/// KPIs of one jurisdiction in one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRow {
    pub period_start: NaiveDate,
    /// Cases created in the period.
    pub volume: u64,
    pub volume_by_category: BTreeMap<String, u64>,
    /// Cases closed in the period.
    pub closed: u64,
    /// 按期办结率: closed by their due time ÷ closed, for cases closed in the period.
    pub on_time_close_out: Ratio,
    /// Cases created in the period that are still open now.
    pub backlog: u64,
    /// 满意率: (satisfied + basically satisfied) ÷ callbacks, for cases closed in the period.
    pub satisfaction: Ratio,
    /// 参评率: callbacks ÷ cases closed in the period.
    pub participation: Ratio,
    /// First-time petitions received in the period.
    pub first_time_petitions: u64,
    /// 初次信访事项一次性化解率 (final): resolved once ÷ first-time petitions decided.
    pub first_contact_resolution: Ratio,
    /// The same, also counting petitions still inside their observation window.
    pub first_contact_resolution_provisional: Ratio,
}

/// A row for publication (评价结果公开): every count from 1 to
/// `min_cell - 1` is withheld (`null`, named in `suppressed`), every rate whose
/// denominator is that small is withheld, and categories that small are
/// pooled as `other` (withheld too if the pool is small). Zero is shown: it
/// singles nobody out.
pub fn public_row(row: &KpiRow, min_cell: u64) -> serde_json::Value {
    let small = |n: u64| n > 0 && n < min_cell;
    let mut suppressed = Vec::new();
    let mut count = |name: &str, n: u64| {
        if small(n) {
            suppressed.push(name.to_owned());
            serde_json::Value::Null
        } else {
            serde_json::json!(n)
        }
    };
    let volume = count("volume", row.volume);
    let closed = count("closed", row.closed);
    let backlog = count("backlog", row.backlog);
    let first_time = count("first_time_petitions", row.first_time_petitions);
    let mut ratio = |name: &str, r: &Ratio| {
        if small(r.denominator) {
            suppressed.push(name.to_owned());
            serde_json::Value::Null
        } else {
            serde_json::json!({"numerator": r.numerator, "denominator": r.denominator, "rate": r.rate})
        }
    };
    let on_time = ratio("on_time_close_out", &row.on_time_close_out);
    let satisfaction = ratio("satisfaction", &row.satisfaction);
    let participation = ratio("participation", &row.participation);
    let fcr = ratio("first_contact_resolution", &row.first_contact_resolution);
    let fcr_p = ratio("first_contact_resolution_provisional", &row.first_contact_resolution_provisional);
    let mut by_cat = serde_json::Map::new();
    let mut other = 0;
    for (cat, n) in &row.volume_by_category {
        if small(*n) {
            other += n;
        } else {
            by_cat.insert(cat.clone(), serde_json::json!(n));
        }
    }
    if other > 0 {
        by_cat.insert("other".into(), if small(other) { serde_json::Value::Null } else { serde_json::json!(other) });
    }
    serde_json::json!({
        "period_start": row.period_start,
        "volume": volume,
        "volume_by_category": by_cat,
        "closed": closed,
        "on_time_close_out": on_time,
        "backlog": backlog,
        "satisfaction": satisfaction,
        "participation": participation,
        "first_time_petitions": first_time,
        "first_contact_resolution": fcr,
        "first_contact_resolution_provisional": fcr_p,
        "suppressed": suppressed,
    })
}

#[derive(Default)]
struct Acc {
    volume: u64,
    by_cat: BTreeMap<String, u64>,
    closed: u64,
    on_time: u64,
    backlog: u64,
    callbacks: u64,
    satisfied: u64,
    first_time: u64,
    fcr_num: u64,
    fcr_den: u64,
    prov_num: u64,
    prov_den: u64,
}

/// Aggregates facts into one row per period bucket in `[from, to]` (dates in
/// China time), evaluated at `now` with the first-contact observation `window`.
pub fn aggregate<'a>(
    facts: impl IntoIterator<Item = &'a CaseFacts>,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    window: Duration,
) -> Vec<KpiRow> {
    let mut acc: BTreeMap<NaiveDate, Acc> = BTreeMap::new();
    let in_range = |at: DateTime<Utc>| {
        let d = at.with_timezone(&china_offset()).date_naive();
        d >= from && d <= to
    };
    for f in facts {
        if in_range(f.created_at) {
            let a = acc.entry(period.bucket(f.created_at)).or_default();
            a.volume += 1;
            *a.by_cat.entry(f.category.clone()).or_default() += 1;
            if f.status.is_open() {
                a.backlog += 1;
            }
            if f.is_first_time_petition() {
                a.first_time += 1;
                let failed = f.transferred_up || f.disqualified_at.is_some();
                if failed {
                    a.fcr_den += 1;
                    a.prov_den += 1;
                } else if let (Some(_), Some(answered)) = (f.closed_at, f.resolved_at) {
                    a.prov_den += 1;
                    a.prov_num += 1;
                    if answered + window <= now {
                        a.fcr_den += 1;
                        a.fcr_num += 1;
                    }
                }
            }
        }
        if let Some(closed) = f.closed_at.filter(|c| in_range(*c)) {
            let a = acc.entry(period.bucket(closed)).or_default();
            a.closed += 1;
            if f.closed_on_time() == Some(true) {
                a.on_time += 1;
            }
            if let Some(s) = f.satisfaction {
                a.callbacks += 1;
                if s != Satisfaction::Unsatisfied {
                    a.satisfied += 1;
                }
            }
        }
    }
    acc.into_iter()
        .map(|(start, a)| KpiRow {
            period_start: start,
            volume: a.volume,
            volume_by_category: a.by_cat,
            closed: a.closed,
            on_time_close_out: Ratio::new(a.on_time, a.closed),
            backlog: a.backlog,
            satisfaction: Ratio::new(a.satisfied, a.callbacks),
            participation: Ratio::new(a.callbacks, a.closed),
            first_time_petitions: a.first_time,
            first_contact_resolution: Ratio::new(a.fcr_num, a.fcr_den),
            first_contact_resolution_provisional: Ratio::new(a.prov_num, a.prov_den),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).single().unwrap()
    }

    fn facts(created: DateTime<Utc>) -> CaseFacts {
        CaseFacts {
            case_id: Uuid::new_v4(),
            hierarchy: Hierarchy::from_grid_code("371002001001001").unwrap(),
            category: "dispute.neighbourhood".into(),
            channel: Channel::PeopleMediation,
            status: CaseStatus::Created,
            created_at: created,
            due_at: created + Duration::days(3),
            accepted_at: None,
            resolved_at: None,
            closed_at: None,
            satisfaction: None,
            petition: None,
            transferred_up: false,
            disqualified_at: None,
        }
    }

    fn petition(created: DateTime<Utc>) -> CaseFacts {
        let mut f = facts(created);
        f.category = "petition.land".into();
        f.channel = Channel::Petition;
        f.petition =
            Some(PetitionInfo { petitioner_key: "p".into(), matter_key: "m".into(), class: PetitionClass::FirstTime });
        f
    }

    #[test]
    fn buckets_in_china_time() {
        // 2025-03-02 20:00 UTC is 2025-03-03 04:00 in China.
        assert_eq!(Period::Day.bucket(at(2, 20)), NaiveDate::from_ymd_opt(2025, 3, 3).unwrap());
        assert_eq!(Period::Week.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 3, 3).unwrap());
        assert_eq!(Period::Quarter.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert_eq!(Period::Month.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
    }

    #[test]
    fn hand_computed_rates() {
        let window = Duration::days(30);
        let now = at(31, 0) + Duration::days(40); // well after every window
        let mut on_time = facts(at(1, 1));
        on_time.apply(CaseEventKind::Resolved, at(2, 1), CaseStatus::Resolved, None);
        on_time.apply(CaseEventKind::Closed, at(2, 2), CaseStatus::Closed, None);
        on_time.apply(
            CaseEventKind::CallbackRecorded,
            at(2, 3),
            CaseStatus::Closed,
            Some(Satisfaction::BasicallySatisfied),
        );
        let mut late = facts(at(1, 1));
        late.apply(CaseEventKind::Closed, at(10, 1), CaseStatus::Closed, None);
        let open = facts(at(1, 2));
        // Petitions: one resolved once, one disqualified, one unanswered.
        let mut once = petition(at(1, 3));
        once.apply(CaseEventKind::Resolved, at(3, 0), CaseStatus::Resolved, None);
        once.apply(CaseEventKind::Closed, at(3, 1), CaseStatus::Closed, None);
        let mut twice = once.clone();
        twice.case_id = Uuid::new_v4();
        assert!(twice.disqualified_by(at(20, 0), window));
        assert!(!twice.disqualified_by(at(3, 0) + Duration::days(31), window));
        twice.disqualified_at = Some(at(20, 0));
        let unanswered = petition(at(1, 4));
        let all = [on_time, late, open, once, twice, unanswered];
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let e = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
        let rows = aggregate(&all, Period::Month, d, e, now, window);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.volume, 6);
        assert_eq!(r.volume_by_category.get("petition.land"), Some(&3));
        assert_eq!(r.closed, 4);
        assert_eq!((r.on_time_close_out.numerator, r.on_time_close_out.denominator), (3, 4));
        assert_eq!(r.backlog, 2);
        assert_eq!((r.satisfaction.numerator, r.satisfaction.denominator), (1, 1));
        assert_eq!((r.participation.numerator, r.participation.denominator), (1, 4));
        assert_eq!(r.first_time_petitions, 3);
        assert_eq!((r.first_contact_resolution.numerator, r.first_contact_resolution.denominator), (1, 2));
        assert_eq!(r.first_contact_resolution.rate, Some(0.5));
        // Ten days after the answer, the resolved petition is only provisional.
        let early = at(13, 0);
        let rows = aggregate(&all, Period::Month, d, e, early, window);
        let r = &rows[0];
        assert_eq!((r.first_contact_resolution.numerator, r.first_contact_resolution.denominator), (0, 1));
        assert_eq!(
            (r.first_contact_resolution_provisional.numerator, r.first_contact_resolution_provisional.denominator),
            (1, 2)
        );
    }

    #[test]
    fn public_rows_withhold_small_cells() {
        let r = |n, d| Ratio::new(n, d);
        let row = KpiRow {
            period_start: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            volume: 12,
            volume_by_category: BTreeMap::from([
                ("dispute.neighbourhood".to_owned(), 9),
                ("dispute.consumer".to_owned(), 2),
                ("hazard.fire".to_owned(), 1),
            ]),
            closed: 7,
            on_time_close_out: r(6, 7),
            backlog: 3,
            satisfaction: r(2, 3),
            participation: r(3, 7),
            first_time_petitions: 0,
            first_contact_resolution: r(0, 0),
            first_contact_resolution_provisional: r(1, 1),
        };
        let p = public_row(&row, 5);
        assert_eq!(p["volume"], 12);
        assert_eq!(p["closed"], 7);
        assert_eq!(p["backlog"], serde_json::Value::Null, "3 < 5");
        assert_eq!(p["first_time_petitions"], 0, "zero singles nobody out");
        assert_eq!(p["on_time_close_out"]["numerator"], 6);
        assert_eq!(p["satisfaction"], serde_json::Value::Null, "3 callbacks < 5");
        assert_eq!(p["first_contact_resolution"]["denominator"], 0);
        assert_eq!(p["first_contact_resolution_provisional"], serde_json::Value::Null);
        // Small categories pooled; the pool (3) is itself withheld.
        assert_eq!(p["volume_by_category"], serde_json::json!({"dispute.neighbourhood": 9, "other": null}));
        assert_eq!(
            p["suppressed"],
            serde_json::json!(["backlog", "satisfaction", "first_contact_resolution_provisional"])
        );
        // With a lower threshold the same row shows more.
        let p = public_row(&row, 3);
        assert_eq!(
            (p["backlog"].clone(), p["volume_by_category"]["other"].clone()),
            (serde_json::json!(3), serde_json::json!(3))
        );
    }
}
