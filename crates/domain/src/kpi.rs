//! Governance KPIs, derived from case lifecycle events alone.
//!
//! [`CaseFacts`] is what the KPIs need to know of one case, folded from its
//! events. Each fact contributes additive [`Tally`] counts to the days
//! (China time) on which things happened to it ([`CaseFacts::contributions`]);
//! analytics keeps those day tallies per jurisdiction and updates them by the
//! difference when a fact changes, and [`rows`] turns day tallies into one
//! [`KpiRow`] per period. [`aggregate`] does the same straight from facts:
//! both paths share every definition. Definitions are in `docs/kpis.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::case::{CaseEventKind, CaseStatus, Channel, Satisfaction};
use crate::codes::{Hierarchy, Level};
use crate::petition::{PetitionClass, PetitionInfo};

/// Periods are calendar periods in China Standard Time (UTC+8).
pub fn china_offset() -> FixedOffset {
    match FixedOffset::east_opt(8 * 3600) {
        Some(o) => o,
        None => unreachable!("+08:00 is a valid offset"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Period {
    pub const ALL: [Period; 5] = [Period::Day, Period::Week, Period::Month, Period::Quarter, Period::Year];

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

    /// The last day of the period that starts on `start`.
    pub fn end_of(self, start: NaiveDate) -> NaiveDate {
        let months = |n: u32| start.checked_add_months(chrono::Months::new(n)).unwrap_or(start);
        let next = match self {
            Period::Day => start + Duration::days(1),
            Period::Week => start + Duration::days(7),
            Period::Month => months(1),
            Period::Quarter => months(3),
            Period::Year => months(12),
        };
        next - Duration::days(1)
    }

    /// The bucket (period start, China time) of an instant.
    pub fn bucket(self, at: DateTime<Utc>) -> NaiveDate {
        self.start_of(at.with_timezone(&china_offset()).date_naive())
    }
}

/// The day (China time) an instant falls on.
pub fn china_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&china_offset()).date_naive()
}

/// The levels whose day tallies analytics keeps. A grid's KPIs are computed
/// from the grid's own facts, which are few.
pub const CELL_LEVELS: [Level; 5] = [Level::Community, Level::Street, Level::County, Level::City, Level::Province];

/// Where a first-time petition stands for first-contact resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fcr {
    /// Not answered and closed yet: in neither rate.
    Open,
    /// Answered and closed; its observation window is still running.
    Pending,
    /// Its window ended with nothing against it: resolved once.
    Final,
    /// Transferred up, or a review request, repeat petition, escalation or
    /// reopen came before the answer or inside the window.
    Failed,
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
    /// The acceptance deadline, for cases with an acceptance clock (petitions).
    #[serde(default)]
    pub accept_due_at: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rejected_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The last close, cleared by a reopen.
    pub closed_at: Option<DateTime<Utc>>,
    /// The callback's outcome, cleared by a reopen.
    pub satisfaction: Option<Satisfaction>,
    pub petition: Option<PetitionInfo>,
    /// Escalated (上行) to a higher level's centre.
    pub transferred_up: bool,
    /// Reopened at least once.
    #[serde(default)]
    pub reopened: bool,
    /// When a review request, repeat petition, escalation or reopen on the
    /// same matter disqualified this petition from first-contact resolution
    /// (the earliest of the two below that counts).
    pub disqualified_at: Option<DateTime<Utc>>,
    /// This case's own escalation, reopen or review request that came in
    /// time (events of one case are folded in order).
    #[serde(default)]
    pub own_disqualified_at: Option<DateTime<Utc>>,
    /// When the same petitioner raised the same matter again later (repeat
    /// or escalated petitions). Whether they count depends on the answer's
    /// time, which may be folded after them: other cases' events come in
    /// any order, so they are kept and judged whenever the facts change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub later_petitions: Vec<DateTime<Utc>>,
    /// The observation window ended with the petition resolved once.
    #[serde(default)]
    pub fcr_final: bool,
}

impl CaseFacts {
    /// The facts of a case just created, before any event is folded.
    pub fn opened(
        case_id: Uuid,
        hierarchy: Hierarchy,
        category: String,
        channel: Channel,
        created_at: DateTime<Utc>,
        due_at: DateTime<Utc>,
        petition: Option<PetitionInfo>,
    ) -> Self {
        CaseFacts {
            case_id,
            hierarchy,
            category,
            channel,
            status: CaseStatus::Created,
            created_at,
            due_at,
            accept_due_at: None,
            accepted_at: None,
            rejected_at: None,
            resolved_at: None,
            closed_at: None,
            satisfaction: None,
            petition,
            transferred_up: false,
            reopened: false,
            disqualified_at: None,
            own_disqualified_at: None,
            later_petitions: Vec::new(),
            fcr_final: false,
        }
    }

    /// Folds one lifecycle event into the facts. Applying the same event
    /// twice gives the same facts.
    pub fn apply(
        &mut self,
        kind: CaseEventKind,
        at: DateTime<Utc>,
        status: CaseStatus,
        satisfaction: Option<Satisfaction>,
        window: Duration,
    ) {
        self.status = status;
        match kind {
            CaseEventKind::Accepted => {
                self.accepted_at.get_or_insert(at);
            }
            CaseEventKind::Rejected => self.rejected_at = Some(at),
            CaseEventKind::Resolved => self.resolved_at = Some(at),
            CaseEventKind::Closed => self.closed_at = Some(at),
            CaseEventKind::CallbackRecorded => self.satisfaction = satisfaction,
            CaseEventKind::Reopened => {
                self.reopened = true;
                self.closed_at = None;
                self.satisfaction = None;
                self.disqualify_own(at, window);
            }
            CaseEventKind::Escalated => {
                self.transferred_up = true;
                self.disqualify_own(at, window);
            }
            CaseEventKind::ReviewRequested => {
                self.disqualify_own(at, window);
            }
            _ => {}
        }
        self.judge(window);
    }

    fn disqualify_own(&mut self, at: DateTime<Utc>, window: Duration) {
        if self.is_first_time_petition() && self.own_disqualified_at.is_none() && self.disqualified_by(at, window) {
            self.own_disqualified_at = Some(at);
        }
    }

    /// Notes that the same petitioner raised the same matter again at `at`
    /// (a repeat or escalated petition). Whether it changed anything.
    pub fn note_later_petition(&mut self, at: DateTime<Utc>, window: Duration) -> bool {
        if !self.is_first_time_petition() || at <= self.created_at || self.later_petitions.contains(&at) {
            return false;
        }
        self.later_petitions.push(at);
        self.later_petitions.sort();
        self.judge(window);
        true
    }

    /// Recomputes `disqualified_at` from this case's own events and the
    /// later petitions, against the answer as now known. Evidence that
    /// happened inside the window counts even when it is folded after the
    /// window ended (a lagging partition, a replay of history): the result
    /// then turns from final to failed.
    fn judge(&mut self, window: Duration) {
        let later = self.later_petitions.iter().copied().find(|t| self.disqualified_by(*t, window));
        self.disqualified_at = match (self.own_disqualified_at, later) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Failed, however it was marked before: the facts come out the same
        // whether or not the tick got there first.
        if self.disqualified_at.is_some() {
            self.fcr_final = false;
        }
    }

    pub fn is_first_time_petition(&self) -> bool {
        matches!(&self.petition, Some(p) if p.class == PetitionClass::FirstTime)
    }

    /// Whether something on the same matter at `at` disqualifies this
    /// petition: it came before the answer or within the observation window
    /// after it.
    pub fn disqualified_by(&self, at: DateTime<Utc>, window: Duration) -> bool {
        match self.resolved_at {
            None => true,
            Some(answered) => at <= answered + window,
        }
    }

    /// First-contact resolution of a first-time petition (`None` for
    /// anything else).
    pub fn fcr(&self) -> Option<Fcr> {
        if !self.is_first_time_petition() {
            return None;
        }
        // Escalation (transfer up) before the answer is among the own
        // disqualifying events; after the window it changes nothing.
        Some(if self.disqualified_at.is_some() {
            Fcr::Failed
        } else if self.fcr_final {
            Fcr::Final
        } else if self.closed_at.is_some() && self.resolved_at.is_some() {
            Fcr::Pending
        } else {
            Fcr::Open
        })
    }

    /// When a pending petition's window ends.
    pub fn matures_at(&self, window: Duration) -> Option<DateTime<Utc>> {
        match (self.fcr(), self.resolved_at) {
            (Some(Fcr::Pending), Some(answered)) => Some(answered + window),
            _ => None,
        }
    }

    /// Makes a pending petition's result final once its window has ended at
    /// `now`. Whether it changed anything.
    pub fn mature(&mut self, now: DateTime<Utc>, window: Duration) -> bool {
        match self.matures_at(window) {
            Some(end) if end <= now => {
                self.fcr_final = true;
                true
            }
            _ => false,
        }
    }

    pub fn closed_on_time(&self) -> Option<bool> {
        self.closed_at.map(|c| c <= self.due_at)
    }

    /// The jurisdictions whose day tallies this case counts in.
    pub fn cell_codes(&self) -> impl Iterator<Item = &str> {
        CELL_LEVELS.iter().map(|l| self.hierarchy.at(*l)).filter(|c| !c.is_empty())
    }

    /// What this case adds to each day's tally (days in China time). A
    /// case counts where things happened to it: created, decided on
    /// acceptance, closed or rejected.
    pub fn contributions(&self) -> BTreeMap<NaiveDate, Tally> {
        let mut out: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
        let created = out.entry(china_day(self.created_at)).or_default();
        created.created = 1;
        created.by_category.insert(self.category.clone(), 1);
        created.transferred_up = i64::from(self.transferred_up);
        if let Some(p) = &self.petition {
            created.petitions = 1;
            match p.class {
                PetitionClass::FirstTime => created.first_time = 1,
                PetitionClass::Repeat => created.repeat = 1,
                PetitionClass::Escalated => created.escalated = 1,
            }
        }
        match self.fcr() {
            Some(Fcr::Final) => created.fcr_final = 1,
            Some(Fcr::Pending) => created.fcr_pending = 1,
            Some(Fcr::Failed) => created.fcr_failed = 1,
            Some(Fcr::Open) | None => {}
        }
        if let (Some(due), Some(decided)) = (self.accept_due_at, self.accepted_at.or(self.rejected_at)) {
            let t = out.entry(china_day(decided)).or_default();
            t.accept_decided += 1;
            t.accept_on_time += i64::from(decided <= due);
        }
        let ended = match self.status {
            CaseStatus::Closed => self.closed_at,
            CaseStatus::Rejected => self.rejected_at,
            _ => None,
        };
        if let Some(at) = ended {
            out.entry(china_day(at)).or_default().ended += 1;
        }
        if let (CaseStatus::Closed, Some(at)) = (self.status, self.closed_at) {
            let t = out.entry(china_day(at)).or_default();
            t.closed += 1;
            t.closed_on_time += i64::from(at <= self.due_at);
            t.on_the_spot += i64::from(!self.transferred_up && !self.reopened);
            match self.satisfaction {
                None => {}
                Some(Satisfaction::Unanswered) => t.unanswered += 1,
                Some(s) => {
                    t.callbacks += 1;
                    match s {
                        Satisfaction::Satisfied => t.satisfied += 1,
                        Satisfaction::BasicallySatisfied => t.basically_satisfied += 1,
                        _ => t.unsatisfied += 1,
                    }
                }
            }
            *t.close_hours.entry(hours_to_close(at - self.created_at)).or_default() += 1;
        }
        out
    }
}

/// Time to close in whole hours, rounded up (a case closed in 10 minutes
/// took 1 hour).
pub fn hours_to_close(d: Duration) -> u32 {
    let secs = d.num_seconds().max(0);
    u32::try_from((secs + 3599) / 3600).unwrap_or(u32::MAX)
}

macro_rules! tally {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// Additive counts of one jurisdiction on one day. Every KPI of a
        /// period is a function of the sum of its days' tallies (and, for
        /// the backlog, of the days before).
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Tally {
            $($(#[$doc])* #[serde(default, skip_serializing_if = "is_zero")] pub $field: i64,)*
            /// Cases created, by category.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub by_category: BTreeMap<String, i64>,
            /// Cases closed, by hours to close (rounded up).
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub close_hours: BTreeMap<u32, i64>,
        }

        impl Tally {
            /// Adds `sign` × `other` (sign 1 or −1); counts that reach 0 leave the maps.
            pub fn add(&mut self, other: &Tally, sign: i64) {
                $(self.$field += sign * other.$field;)*
                add_map(&mut self.by_category, &other.by_category, sign);
                add_map(&mut self.close_hours, &other.close_hours, sign);
            }

            pub fn is_zero(&self) -> bool {
                true $(&& self.$field == 0)* && self.by_category.is_empty() && self.close_hours.is_empty()
            }
        }
    };
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, i64>, from: &BTreeMap<K, i64>, sign: i64) {
    for (k, v) in from {
        let n = into.entry(k.clone()).or_default();
        *n += sign * v;
        if *n == 0 {
            into.remove(k);
        }
    }
}

tally! {
    /// Cases created.
    created,
    /// Cases closed or rejected (and not reopened since).
    ended,
    closed,
    closed_on_time,
    /// Closed without escalation and never reopened.
    on_the_spot,
    /// Cases with an acceptance clock accepted or rejected.
    accept_decided,
    accept_on_time,
    /// Callbacks answered (satisfied, basically satisfied or unsatisfied).
    callbacks,
    satisfied,
    basically_satisfied,
    unsatisfied,
    /// Callbacks nobody answered.
    unanswered,
    petitions,
    first_time,
    repeat,
    escalated,
    /// Cases escalated to a higher level's centre.
    transferred_up,
    fcr_final,
    fcr_pending,
    fcr_failed,
}

/// How a fact's change moves the day tallies: `new`'s contributions minus
/// `old`'s, per (jurisdiction, day), leaving out what did not change.
pub fn delta(old: Option<&CaseFacts>, new: &CaseFacts) -> BTreeMap<(String, NaiveDate), Tally> {
    let mut out: BTreeMap<(String, NaiveDate), Tally> = BTreeMap::new();
    let mut put = |f: &CaseFacts, sign: i64| {
        let days = f.contributions();
        for code in f.cell_codes() {
            for (day, t) in &days {
                out.entry((code.to_owned(), *day)).or_default().add(t, sign);
            }
        }
    };
    if let Some(old) = old {
        put(old, -1);
    }
    put(new, 1);
    out.retain(|_, t| !t.is_zero());
    out
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
    pub fn new(numerator: u64, denominator: u64) -> Self {
        let rate = (denominator > 0).then(|| numerator as f64 / denominator as f64);
        Ratio { numerator, denominator, rate }
    }
}

/// KPIs of one jurisdiction in one period (definitions in `docs/kpis.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRow {
    pub period_start: NaiveDate,
    /// Cases created in the period.
    pub volume: u64,
    pub volume_by_category: BTreeMap<String, u64>,
    /// Cases closed in the period.
    pub closed: u64,
    /// 按期办结率: closed by their due time ÷ closed.
    pub on_time_close_out: Ratio,
    /// 就地化解率: closed without escalation and never reopened ÷ closed.
    pub on_the_spot_resolution: Ratio,
    /// 按期受理率: accepted or rejected by the acceptance deadline ÷ decided.
    pub on_time_acceptance: Ratio,
    /// 积案: cases open at the end of the period (as known now).
    pub backlog: u64,
    /// 满意率: (satisfied + basically satisfied) ÷ callbacks answered.
    pub satisfaction: Ratio,
    /// 参评率: callbacks answered ÷ cases closed.
    pub participation: Ratio,
    /// Callbacks nobody answered, of cases closed in the period.
    pub callbacks_unanswered: u64,
    /// Median hours from creation to close of the cases closed in the period.
    pub median_hours_to_close: Option<u32>,
    /// Petitions received in the period.
    pub petitions: u64,
    pub first_time_petitions: u64,
    /// 重复信访率: repeat petitions ÷ petitions received.
    pub repeat_petition_rate: Ratio,
    /// 越级上行率: escalated petitions ÷ petitions received.
    pub escalation_rate: Ratio,
    /// 上行率: cases created in the period and escalated since ÷ cases created.
    pub transfer_up_rate: Ratio,
    /// 初次信访事项一次性化解率 (final): resolved once ÷ decided.
    pub first_contact_resolution: Ratio,
    /// The same, also counting petitions still inside their observation window.
    pub first_contact_resolution_provisional: Ratio,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The median of a histogram: the smallest value whose cumulative count
/// reaches half the total (rounded up).
fn median(hist: &BTreeMap<u32, i64>) -> Option<u32> {
    let n: i64 = hist.values().sum();
    if n <= 0 {
        return None;
    }
    let half = (n + 1) / 2;
    let mut seen = 0;
    for (v, c) in hist {
        seen += c;
        if seen >= half {
            return Some(*v);
        }
    }
    None
}

fn row_of(period_start: NaiveDate, t: &Tally, backlog: i64) -> KpiRow {
    let r = |n: i64, d: i64| Ratio::new(count(n), count(d));
    KpiRow {
        period_start,
        volume: count(t.created),
        volume_by_category: t
            .by_category
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), count(*n)))
            .collect(),
        closed: count(t.closed),
        on_time_close_out: r(t.closed_on_time, t.closed),
        on_the_spot_resolution: r(t.on_the_spot, t.closed),
        on_time_acceptance: r(t.accept_on_time, t.accept_decided),
        backlog: count(backlog),
        satisfaction: r(t.satisfied + t.basically_satisfied, t.callbacks),
        participation: r(t.callbacks, t.closed),
        callbacks_unanswered: count(t.unanswered),
        median_hours_to_close: median(&t.close_hours),
        petitions: count(t.petitions),
        first_time_petitions: count(t.first_time),
        repeat_petition_rate: r(t.repeat, t.petitions),
        escalation_rate: r(t.escalated, t.petitions),
        transfer_up_rate: r(t.transferred_up, t.created),
        first_contact_resolution: r(t.fcr_final, t.fcr_final + t.fcr_failed),
        first_contact_resolution_provisional: r(
            t.fcr_final + t.fcr_pending,
            t.fcr_final + t.fcr_pending + t.fcr_failed,
        ),
    }
}

/// One row per period bucket with activity in `[from, to]`, from the day
/// tallies of those days and the backlog carried in from before `from`
/// (created − ended over every earlier day).
pub fn rows(
    days: &BTreeMap<NaiveDate, Tally>,
    opening_backlog: i64,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<KpiRow> {
    let mut out: Vec<KpiRow> = Vec::new();
    let mut backlog = opening_backlog;
    let mut current: Option<(NaiveDate, Tally)> = None;
    for (day, t) in days.range(from..=to) {
        // A tally that counts nothing is no activity: no row of its own
        // (a partial month read as its month minus the days outside the
        // range can come to zero, and so can a day cell the maturity tick
        // emptied).
        if t.is_zero() {
            continue;
        }
        backlog += t.created - t.ended;
        let bucket = period.start_of(*day);
        match &mut current {
            Some((b, acc)) if *b == bucket => acc.add(t, 1),
            _ => {
                if let Some((b, acc)) = current.take() {
                    // The backlog at the end of a bucket is the running
                    // figure before this day's change.
                    out.push(row_of(b, &acc, backlog - (t.created - t.ended)));
                }
                current = Some((bucket, t.clone()));
            }
        }
    }
    if let Some((b, acc)) = current {
        out.push(row_of(b, &acc, backlog));
    }
    out
}

/// The KPI rows of a set of facts: every fact's contributions summed per
/// day, then [`rows`]. What analytics answers from its day tallies must
/// equal this.
pub fn aggregate<'a>(
    facts: impl IntoIterator<Item = &'a CaseFacts>,
    period: Period,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<KpiRow> {
    let (days, opening) = day_tallies(facts, from, to);
    rows(&days, opening, period, from, to)
}

/// The summed day tallies of `facts` in `[from, to]`, and the backlog
/// carried in from before `from`.
pub fn day_tallies<'a>(
    facts: impl IntoIterator<Item = &'a CaseFacts>,
    from: NaiveDate,
    to: NaiveDate,
) -> (BTreeMap<NaiveDate, Tally>, i64) {
    let mut days: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
    let mut opening = 0;
    for f in facts {
        for (day, t) in f.contributions() {
            if day < from {
                opening += t.created - t.ended;
            } else if day <= to {
                days.entry(day).or_default().add(&t, 1);
            }
        }
    }
    (days, opening)
}

/// The unit directly above a published one: street → county → city →
/// province (grids and communities are not published).
pub fn published_parent(code: &str) -> Option<String> {
    match crate::codes::level_of(code).ok()? {
        Level::Street => Some(code[..6].to_owned()),
        Level::County => Some(format!("{}00", &code[..4])),
        Level::City => Some(format!("{}0000", &code[..2])),
        _ => None,
    }
}

/// The figures of a row that publication protects, each a count of cases
/// that adds up over units and over a row's categories: every count, each
/// rate's denominator (a rate is shown or withheld with it), and each
/// category's volume (`category:<code>`).
fn figures(row: &KpiRow) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(full)) = serde_json::to_value(row) {
        for (name, value) in full {
            let n = match (name.as_str(), &value) {
                ("period_start" | "volume_by_category" | "median_hours_to_close", _) => None,
                (_, serde_json::Value::Number(n)) => n.as_u64(),
                (_, serde_json::Value::Object(o)) => o.get("denominator").and_then(|d| d.as_u64()),
                _ => None,
            };
            if let Some(n) = n {
                out.insert(name, n);
            }
        }
    }
    for (cat, n) in &row.volume_by_category {
        out.insert(format!("category:{cat}"), *n);
    }
    out
}

/// A figure of a unit: (jurisdiction, figure).
type Cell = (String, String);

/// What publication withholds from a table of rows of one period, keyed by
/// jurisdiction (every published unit with activity, streets and above).
///
/// 1. **Small cells**: a figure from 1 to `min_cell − 1` is withheld. Zero
///    is shown: it singles nobody out.
/// 2. **Complementary withholding.** A figure is the sum of its parts: a
///    unit's figure of the figures of the units directly below it plus its
///    own cases that no unit below publishes (a county's triage cases), and
///    a row's volume of its categories. For every published whole, what its
///    published parts leave over (the whole minus the parts shown) is 0 or
///    at least `min_cell`; while it is not, the smallest part still shown is
///    withheld too, or the whole if no part is left. So no withheld figure,
///    and no sum of withheld figures, can be had by subtraction.
/// 3. **Downward.** The parts of a withheld whole are withheld (except
///    zeros), so a whole withheld to protect a neighbour cannot be rebuilt
///    from its parts.
///
/// Repeated until nothing changes. Each relation is checked on its own: a
/// combination of several (a unit's categories against its neighbours'
/// categories) is not audited.
fn withheld(rows: &BTreeMap<String, KpiRow>, min_cell: u64) -> std::collections::BTreeSet<Cell> {
    // Cells by index: `cells[i]` has the value `values[i]`.
    let mut of_unit: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    struct Cells {
        index: BTreeMap<Cell, usize>,
        cells: Vec<Cell>,
        values: Vec<u64>,
    }
    impl Cells {
        fn intern(&mut self, cell: Cell, n: u64) -> usize {
            if let Some(i) = self.index.get(&cell) {
                return *i;
            }
            self.cells.push(cell.clone());
            self.values.push(n);
            self.index.insert(cell, self.cells.len() - 1);
            self.cells.len() - 1
        }
    }
    let mut t = Cells { index: BTreeMap::new(), cells: Vec::new(), values: Vec::new() };
    for (code, row) in rows {
        for (f, n) in figures(row) {
            let i = t.intern((code.clone(), f), n);
            of_unit.entry(code.as_str()).or_default().push(i);
        }
    }
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for code in rows.keys() {
        if let Some(parent) = published_parent(code).and_then(|p| rows.get_key_value(&p)).map(|(p, _)| p) {
            children.entry(parent.as_str()).or_default().push(code.as_str());
        }
    }
    // (whole, parts): a part missing from a unit's figures is 0.
    let mut relations: Vec<(usize, Vec<usize>)> = Vec::new();
    for (parent, kids) in &children {
        let mut names = std::collections::BTreeSet::new();
        for code in std::iter::once(parent).chain(kids.iter()) {
            for i in of_unit.get(code).into_iter().flatten() {
                names.insert(t.cells[*i].1.clone());
            }
        }
        for f in names {
            let whole = t.intern((parent.to_string(), f.clone()), 0);
            let parts = kids.iter().map(|k| t.intern((k.to_string(), f.clone()), 0)).collect();
            relations.push((whole, parts));
        }
    }
    for (code, row) in rows {
        let whole = t.intern((code.clone(), "volume".to_owned()), row.volume);
        let parts: Vec<usize> =
            row.volume_by_category.iter().map(|(c, n)| t.intern((code.clone(), format!("category:{c}")), *n)).collect();
        if !parts.is_empty() {
            relations.push((whole, parts));
        }
    }
    let Cells { cells, values, .. } = t;
    let mut hidden: Vec<bool> = values.iter().map(|n| *n > 0 && *n < min_cell).collect();
    loop {
        let mut changed = false;
        for (whole, parts) in &relations {
            loop {
                if hidden[*whole] {
                    for p in parts {
                        if values[*p] > 0 && !hidden[*p] {
                            hidden[*p] = true;
                            changed = true;
                        }
                    }
                    break;
                }
                let shown: u64 = parts.iter().filter(|p| !hidden[**p]).map(|p| values[*p]).sum();
                let rest = values[*whole].saturating_sub(shown);
                if rest == 0 || rest >= min_cell {
                    break;
                }
                let next = parts
                    .iter()
                    .filter(|p| values[**p] > 0 && !hidden[**p])
                    .min_by_key(|p| (values[**p], &cells[**p]))
                    .unwrap_or(whole);
                hidden[*next] = true;
                changed = true;
            }
        }
        if !changed {
            return cells.into_iter().zip(hidden).filter(|(_, h)| *h).map(|(c, _)| c).collect();
        }
    }
}

/// One row as published, given what is withheld.
fn render(code: &str, row: &KpiRow, hidden: &std::collections::BTreeSet<Cell>) -> serde_json::Value {
    let is_hidden = |f: &str| hidden.contains(&(code.to_owned(), f.to_owned()));
    let mut out = serde_json::Map::new();
    let mut suppressed = Vec::new();
    let full = match serde_json::to_value(row) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (name, value) in full {
        let withhold = match name.as_str() {
            "volume_by_category" | "period_start" => false,
            "median_hours_to_close" => is_hidden("closed"),
            n => is_hidden(n),
        };
        if withhold {
            suppressed.push(name.clone());
            out.insert(name, serde_json::Value::Null);
        } else {
            out.insert(name, value);
        }
    }
    let mut by_cat = serde_json::Map::new();
    let mut shown = 0;
    let mut any_hidden = false;
    for (cat, n) in &row.volume_by_category {
        if is_hidden(&format!("category:{cat}")) {
            any_hidden = true;
        } else {
            shown += n;
            by_cat.insert(cat.clone(), serde_json::json!(n));
        }
    }
    // What the categories shown leave of the volume: derivable anyway, and
    // by the rule above 0 or at least min_cell.
    if any_hidden {
        let other = if is_hidden("volume") { serde_json::Value::Null } else { serde_json::json!(row.volume - shown) };
        by_cat.insert("other".into(), other);
    }
    out.insert("volume_by_category".into(), serde_json::Value::Object(by_cat));
    out.insert("suppressed".into(), serde_json::json!(suppressed));
    serde_json::Value::Object(out)
}

/// A table for publication (评价结果公开): the rows of one period of every
/// published unit with activity, keyed by jurisdiction, each with small
/// cells and their complements withheld (`null`, named in `suppressed`; see
/// [`withheld`]). Categories withheld are pooled as `other`, which is
/// `null` when the volume is withheld.
pub fn public_table(rows: &BTreeMap<String, KpiRow>, min_cell: u64) -> BTreeMap<String, serde_json::Value> {
    let hidden = withheld(rows, min_cell);
    rows.iter().map(|(code, row)| (code.clone(), render(code, row, &hidden))).collect()
}

/// One row published on its own (its categories against its volume; no
/// other unit to protect).
pub fn public_row(row: &KpiRow, min_cell: u64) -> serde_json::Value {
    let rows = BTreeMap::from([(String::new(), row.clone())]);
    public_table(&rows, min_cell).remove("").unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).single().unwrap()
    }

    const W: fn() -> Duration = || Duration::days(30);

    fn facts(created: DateTime<Utc>) -> CaseFacts {
        CaseFacts::opened(
            Uuid::new_v4(),
            Hierarchy::from_grid_code("371002001001001").unwrap(),
            "dispute.neighbourhood".into(),
            Channel::PeopleMediation,
            created,
            created + Duration::days(3),
            None,
        )
    }

    fn petition(created: DateTime<Utc>) -> CaseFacts {
        let mut f = facts(created);
        f.category = "petition.land".into();
        f.channel = Channel::Petition;
        f.accept_due_at = Some(created + Duration::days(15));
        f.petition =
            Some(PetitionInfo { petitioner_key: "p".into(), matter_key: "m".into(), class: PetitionClass::FirstTime });
        f
    }

    fn close(f: &mut CaseFacts, resolved: DateTime<Utc>, closed: DateTime<Utc>) {
        f.apply(CaseEventKind::Resolved, resolved, CaseStatus::Resolved, None, W());
        f.apply(CaseEventKind::Closed, closed, CaseStatus::Closed, None, W());
    }

    fn month(facts: &[CaseFacts]) -> KpiRow {
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let e = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
        let mut rows = aggregate(facts, Period::Month, d, e);
        assert_eq!(rows.len(), 1);
        rows.remove(0)
    }

    fn parts(r: &Ratio) -> (u64, u64) {
        (r.numerator, r.denominator)
    }

    #[test]
    fn buckets_in_china_time() {
        // 2025-03-02 20:00 UTC is 2025-03-03 04:00 in China.
        assert_eq!(Period::Day.bucket(at(2, 20)), NaiveDate::from_ymd_opt(2025, 3, 3).unwrap());
        assert_eq!(Period::Week.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 3, 3).unwrap());
        assert_eq!(Period::Quarter.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 1, 1).unwrap());
        assert_eq!(Period::Month.bucket(at(5, 1)), NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(Period::Month.end_of(d(2024, 2, 1)), d(2024, 2, 29));
        assert_eq!(Period::Quarter.end_of(d(2025, 10, 1)), d(2025, 12, 31));
        assert_eq!(Period::Week.end_of(d(2025, 3, 3)), d(2025, 3, 9));
        assert_eq!(Period::Year.end_of(d(2025, 1, 1)), d(2025, 12, 31));
    }

    #[test]
    fn hand_computed_rates() {
        let mut on_time = facts(at(1, 1));
        close(&mut on_time, at(2, 1), at(2, 2)); // 25 hours
        on_time.apply(
            CaseEventKind::CallbackRecorded,
            at(2, 3),
            CaseStatus::Closed,
            Some(Satisfaction::BasicallySatisfied),
            W(),
        );
        let mut late = facts(at(1, 1));
        late.apply(CaseEventKind::Closed, at(10, 1), CaseStatus::Closed, None, W()); // 216 hours
        let mut unanswered = facts(at(1, 1));
        close(&mut unanswered, at(1, 2), at(1, 3)); // 2 hours
        unanswered.apply(
            CaseEventKind::CallbackRecorded,
            at(1, 4),
            CaseStatus::Closed,
            Some(Satisfaction::Unanswered),
            W(),
        );
        let open = facts(at(1, 2));
        // Petitions: one resolved once, one disqualified by a repeat, one
        // unanswered (accepted late), one escalated by the street.
        let mut once = petition(at(1, 3));
        once.apply(CaseEventKind::Accepted, at(2, 0), CaseStatus::Accepted, None, W());
        close(&mut once, at(3, 0), at(3, 1));
        let mut twice = once.clone();
        twice.case_id = Uuid::new_v4();
        assert!(twice.note_later_petition(at(20, 0), W()));
        assert_eq!(twice.fcr(), Some(Fcr::Failed));
        let mut after = once.clone();
        after.note_later_petition(at(3, 0) + Duration::days(31), W());
        assert_eq!(after.fcr(), Some(Fcr::Pending), "a repeat after the window changes nothing");
        let mut waiting = petition(at(1, 4));
        waiting.apply(CaseEventKind::Accepted, at(20, 0), CaseStatus::Accepted, None, W());
        let mut up = petition(at(1, 5));
        up.apply(CaseEventKind::Escalated, at(2, 5), CaseStatus::Created, None, W());
        let now = at(31, 0) + Duration::days(40); // after every window
        for f in [&mut once, &mut twice, &mut waiting, &mut up] {
            f.mature(now, W());
        }
        let all = [on_time, late, unanswered, open, once.clone(), twice, waiting, up];
        let r = month(&all);
        assert_eq!(r.volume, 8);
        assert_eq!(r.volume_by_category.get("petition.land"), Some(&4));
        assert_eq!(r.closed, 5, "on_time, late, unanswered, once, twice");
        assert_eq!(parts(&r.on_time_close_out), (4, 5));
        assert_eq!(parts(&r.on_the_spot_resolution), (5, 5));
        assert_eq!(parts(&r.on_time_acceptance), (2, 3), "once and twice on day 2; waiting on day 20 > 16");
        assert_eq!(r.backlog, 3, "open, waiting, up");
        assert_eq!(parts(&r.satisfaction), (1, 1));
        assert_eq!(parts(&r.participation), (1, 5));
        assert_eq!(r.callbacks_unanswered, 1);
        // Hours to close: 2, 25, 46, 46 (the petitions), 216 → median 46.
        assert_eq!(r.median_hours_to_close, Some(46));
        assert_eq!((r.petitions, r.first_time_petitions), (4, 4));
        assert_eq!(parts(&r.transfer_up_rate), (1, 8));
        assert_eq!(parts(&r.first_contact_resolution), (1, 3), "once / (once, twice, up)");
        assert_eq!(r.first_contact_resolution.rate, Some(1.0 / 3.0));
        // Ten days after the answer, the resolved petition is only provisional.
        let mut young = once;
        young.fcr_final = false;
        assert_eq!(young.matures_at(W()), Some(at(3, 0) + W()));
        assert!(!young.mature(at(13, 0), W()));
        let r = month(&[young]);
        assert_eq!(parts(&r.first_contact_resolution), (0, 0));
        assert_eq!(parts(&r.first_contact_resolution_provisional), (1, 1));
    }

    #[test]
    fn a_reopen_or_review_inside_the_window_fails_a_petition_and_moves_the_close() {
        let mut p = petition(at(1, 0));
        close(&mut p, at(2, 0), at(2, 1));
        p.apply(CaseEventKind::ReviewRequested, at(20, 0), CaseStatus::Closed, None, W());
        assert_eq!(p.fcr(), Some(Fcr::Failed));
        let mut q = petition(at(1, 0));
        close(&mut q, at(2, 0), at(2, 1));
        q.apply(CaseEventKind::Reopened, at(4, 0), CaseStatus::Accepted, None, W());
        assert_eq!(q.fcr(), Some(Fcr::Failed));
        assert_eq!(q.closed_at, None, "a reopened case is no longer closed");
        let r = month(&[q.clone()]);
        assert_eq!((r.closed, r.backlog), (0, 1));
        q.apply(CaseEventKind::Resolved, at(5, 0), CaseStatus::Resolved, None, W());
        q.apply(CaseEventKind::Closed, at(6, 0), CaseStatus::Closed, None, W());
        let r = month(&[q]);
        assert_eq!((r.closed, r.backlog), (1, 0));
        assert_eq!(parts(&r.on_the_spot_resolution), (0, 1), "reopened cases are not resolved on the spot");
        // A review requested after the window changes nothing.
        let mut late = petition(at(1, 0));
        close(&mut late, at(2, 0), at(2, 1));
        late.apply(CaseEventKind::ReviewRequested, at(2, 0) + Duration::days(31), CaseStatus::Closed, None, W());
        assert_eq!(late.fcr(), Some(Fcr::Pending));
    }

    #[test]
    fn a_later_petition_is_judged_against_the_answer_whenever_it_is_folded() {
        // The repeat (20 March) is folded before the answer (3 March) is
        // known: failed for now (before the answer), then judged again.
        let mut p = petition(at(1, 0));
        p.note_later_petition(at(20, 0), W());
        assert_eq!(p.fcr(), Some(Fcr::Failed));
        close(&mut p, at(3, 0), at(3, 1));
        assert_eq!(p.fcr(), Some(Fcr::Failed), "20 March is inside the window of an answer on 3 March");
        let mut q = petition(at(1, 0));
        q.note_later_petition(at(3, 0) + Duration::days(31), W());
        assert_eq!(q.fcr(), Some(Fcr::Failed), "unanswered yet: the repeat came before the answer");
        close(&mut q, at(3, 0), at(3, 1));
        assert_eq!(q.fcr(), Some(Fcr::Pending), "once answered on 3 March, a repeat on 3 April is too late to count");
        // Either order gives the same facts.
        let mut r = petition(at(1, 0));
        r.case_id = q.case_id;
        close(&mut r, at(3, 0), at(3, 1));
        r.note_later_petition(at(3, 0) + Duration::days(31), W());
        assert_eq!(r, q);
    }

    #[test]
    fn a_final_result_yields_to_evidence_from_inside_the_window_folded_late() {
        // Answered 3 March; the tick matured it long after; then a repeat of
        // 20 March (inside the window) arrives from a lagging partition.
        let mut p = petition(at(1, 0));
        close(&mut p, at(3, 0), at(3, 1));
        assert!(p.mature(at(3, 0) + Duration::days(60), W()));
        assert_eq!(p.fcr(), Some(Fcr::Final));
        p.note_later_petition(at(20, 0), W());
        assert_eq!(p.fcr(), Some(Fcr::Failed));
        assert!(!p.fcr_final, "the same facts as if the tick had come later");
        // A reopen after the window changes nothing.
        let mut q = petition(at(1, 0));
        close(&mut q, at(3, 0), at(3, 1));
        q.mature(at(3, 0) + Duration::days(60), W());
        q.apply(CaseEventKind::Reopened, at(3, 0) + Duration::days(40), CaseStatus::Accepted, None, W());
        assert_eq!(q.fcr(), Some(Fcr::Final));
    }

    #[test]
    fn backlog_is_what_is_open_at_each_period_end() {
        // Created on the 1st, 2nd and 10th; closed on the 3rd and 20th.
        let mut a = facts(at(1, 1));
        a.apply(CaseEventKind::Closed, at(3, 1), CaseStatus::Closed, None, W());
        let mut b = facts(at(2, 1));
        b.apply(CaseEventKind::Closed, at(20, 1), CaseStatus::Closed, None, W());
        let c = facts(at(10, 1));
        let all = [a, b, c];
        let d = |n| NaiveDate::from_ymd_opt(2025, 3, n).unwrap();
        let rows = aggregate(&all, Period::Day, d(2), d(31));
        let backlog: Vec<(u32, u64)> = rows.iter().map(|r| (r.period_start.day(), r.backlog)).collect();
        assert_eq!(backlog, vec![(2, 2), (3, 1), (10, 2), (20, 1)]);
        let weeks = aggregate(&all, Period::Week, d(1), d(31));
        let backlog: Vec<u64> = weeks.iter().map(|r| r.backlog).collect();
        assert_eq!(backlog, vec![2, 1, 2, 1], "weeks of 24 Feb, 3 Mar, 10 Mar, 17 Mar");
    }

    #[test]
    fn day_tallies_by_difference_equal_tallies_from_scratch() {
        // A case's facts after each event; the cells follow by difference.
        let mut cells: BTreeMap<(String, NaiveDate), Tally> = BTreeMap::new();
        let mut f = petition(at(1, 23));
        let mut prev: Option<CaseFacts> = None;
        let steps: Vec<(CaseEventKind, DateTime<Utc>, CaseStatus, Option<Satisfaction>)> = vec![
            (CaseEventKind::Created, at(1, 23), CaseStatus::Created, None),
            (CaseEventKind::Accepted, at(2, 1), CaseStatus::Accepted, None),
            (CaseEventKind::Resolved, at(4, 1), CaseStatus::Resolved, None),
            (CaseEventKind::Closed, at(5, 1), CaseStatus::Closed, None),
            (CaseEventKind::CallbackRecorded, at(6, 1), CaseStatus::Closed, Some(Satisfaction::Unsatisfied)),
            (CaseEventKind::Reopened, at(7, 1), CaseStatus::Accepted, None),
            (CaseEventKind::Resolved, at(8, 1), CaseStatus::Resolved, None),
            (CaseEventKind::Closed, at(9, 1), CaseStatus::Closed, None),
        ];
        for (kind, when, status, s) in steps {
            f.apply(kind, when, status, s, W());
            for (k, t) in delta(prev.as_ref(), &f) {
                cells.entry(k).or_default().add(&t, 1);
            }
            prev = Some(f.clone());
        }
        cells.retain(|_, t| !t.is_zero());
        let scratch = delta(None, &f);
        assert_eq!(cells, scratch);
        // Created and accepted on 2 March (China time), closed on 9 March.
        assert_eq!(scratch.keys().filter(|(code, _)| code == "371002").count(), 2);
        assert!(scratch.keys().all(|(code, _)| code.len() != 15), "no grid cells");
    }

    #[test]
    fn median_is_the_lower_middle() {
        let h = |v: &[(u32, i64)]| v.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(median(&h(&[])), None);
        assert_eq!(median(&h(&[(5, 1)])), Some(5));
        assert_eq!(median(&h(&[(1, 1), (9, 1)])), Some(1));
        assert_eq!(median(&h(&[(1, 1), (2, 1), (9, 1)])), Some(2));
        assert_eq!(hours_to_close(Duration::minutes(10)), 1);
        assert_eq!(hours_to_close(Duration::hours(3)), 3);
    }

    #[test]
    fn public_rows_withhold_small_cells() {
        let mut t = Tally {
            created: 12,
            closed: 7,
            closed_on_time: 6,
            on_the_spot: 7,
            callbacks: 3,
            satisfied: 2,
            fcr_pending: 1,
            ended: 9,
            ..Default::default()
        };
        t.by_category = BTreeMap::from([
            ("dispute.neighbourhood".to_owned(), 9),
            ("dispute.consumer".to_owned(), 2),
            ("hazard.fire".to_owned(), 1),
        ]);
        t.close_hours = BTreeMap::from([(4, 7)]);
        let row = row_of(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(), &t, 3);
        let p = public_row(&row, 5);
        assert_eq!(p["volume"], 12);
        assert_eq!(p["closed"], 7);
        assert_eq!(p["median_hours_to_close"], 4);
        assert_eq!(p["backlog"], serde_json::Value::Null, "3 < 5");
        assert_eq!(p["first_time_petitions"], 0, "zero singles nobody out");
        assert_eq!(p["on_time_close_out"]["numerator"], 6);
        assert_eq!(p["satisfaction"], serde_json::Value::Null, "3 callbacks < 5");
        assert_eq!(p["first_contact_resolution"]["denominator"], 0);
        assert_eq!(p["first_contact_resolution_provisional"], serde_json::Value::Null);
        // Small categories pooled; a pool of 3 would be the volume minus
        // the categories shown, so the next smallest is withheld with them.
        assert_eq!(p["volume_by_category"], serde_json::json!({"other": 12}));
        assert_eq!(
            p["suppressed"],
            serde_json::json!(["backlog", "first_contact_resolution_provisional", "satisfaction"])
        );
        // With a lower threshold the same row shows more.
        let p = public_row(&row, 3);
        assert_eq!(
            (p["backlog"].clone(), p["volume_by_category"].clone()),
            (serde_json::json!(3), serde_json::json!({"dispute.neighbourhood": 9, "other": 3}))
        );
    }

    fn volume_row(volume: u64) -> KpiRow {
        let t = Tally {
            created: volume as i64,
            by_category: BTreeMap::from([("dispute.neighbourhood".to_owned(), volume as i64)]),
            ..Default::default()
        };
        row_of(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(), &t, 0)
    }

    #[test]
    fn published_tables_cannot_be_differenced() {
        // A county of three streets (2, 6, 7 cases) under a city and a
        // province of that county alone.
        let rows: BTreeMap<String, KpiRow> =
            [("370000", 15), ("371000", 15), ("371002", 15), ("371002001", 2), ("371002002", 6), ("371002003", 7)]
                .into_iter()
                .map(|(c, n)| (c.to_owned(), volume_row(n)))
                .collect();
        let t = public_table(&rows, 5);
        // The small street, and the smallest other street with it.
        assert_eq!(t["371002001"]["volume"], serde_json::Value::Null);
        assert_eq!(t["371002002"]["volume"], serde_json::Value::Null);
        assert_eq!(t["371002003"]["volume"], 7);
        assert_eq!(t["371002"]["volume"], 15);
        assert_eq!(t["371002002"]["volume_by_category"], serde_json::json!({"other": null}));
        // A county whose own (triage) cases are the small remainder: a
        // street is withheld to cover them.
        let mut rows = rows;
        for c in ["370000", "371000", "371002"] {
            rows.insert(c.into(), volume_row(21));
        }
        rows.insert("371002001".into(), volume_row(5));
        let t = public_table(&rows, 5);
        assert_eq!(t["371002"]["volume"], 21);
        assert_eq!(t["371002001"]["volume"], serde_json::Value::Null, "21 - 6 - 7 = 8 covers the 3 triage cases");
        assert_eq!(
            (t["371002002"]["volume"].clone(), t["371002003"]["volume"].clone()),
            (serde_json::json!(6), serde_json::json!(7))
        );
    }
}
