//! Working days and statutory clocks, in Beijing time (UTC+8, no DST).
//!
//! [`Calendar`] knows which days are working days: the official PRC public
//! holidays and make-up working days (调休上班) come from `data/holidays.json`
//! (one entry per year, copied from the State Council's yearly notice), so a
//! new year is a data change. A day is a working day when it is listed as a
//! make-up working day; otherwise not when it is listed as a holiday;
//! otherwise when it is Monday to Friday. A year missing from the file
//! therefore falls back to Monday–Friday: the service should warn at start
//! when [`Calendar::covers`] is false for the current year.
//!
//! A clock is a [`Span`] from a start instant; [`Calendar::deadline`] is the
//! instant at which it runs out (a case is overdue when `now >= deadline`):
//!
//! - [`Unit::Hours`]: start + n hours, whatever the day.
//! - [`Unit::CalendarDays`], the Civil Code's rule for periods (民法典 第二百零一条,
//!   第二百零三条): the day of the start is not counted; the period ends at
//!   the end (24:00 Beijing time) of the n-th day after the start's Beijing
//!   date; if that last day is not a working day (a holiday or a weekend), it
//!   ends at the end of the next working day instead.
//! - [`Unit::WorkingDays`]: n working days are counted strictly after the
//!   start's Beijing date; the clock ends at the end of the n-th one.
//!
//! The end of day D is 00:00 Beijing time of D + 1, returned in UTC (16:00Z of
//! D). A span of 0 runs out at its start. Deadlines beyond chrono's range
//! saturate at [`DateTime::<Utc>::MAX_UTC`].
//!
//! [`PetitionRules`] holds the clocks of the 信访工作条例 (2022): acceptance
//! (15 days), close-out (60 days), extension (at most 30 days) and the
//! petitioner's review window (30 days). [`near_due_at`] gives the instant at
//! which a share of a clock has elapsed, for near-due supervision.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::kpi::china_offset;

/// The shipped schedule, compiled in.
const OFFICIAL_JSON: &str = include_str!("../../../data/holidays.json");

/// What the file says of one date.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed {
    /// A public holiday, by its Chinese name.
    Holiday(String),
    /// A make-up working day, with the holiday it makes up for.
    Workday(String),
}

/// The working-day calendar: weekends plus the listed holidays and make-up
/// working days. `Calendar::default()` lists nothing (Monday–Friday only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Covered years and the notice each comes from.
    years: BTreeMap<i32, String>,
    listed: BTreeMap<NaiveDate, Listed>,
}

/// Why a holidays file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("holidays file: {0}")]
    Json(String),
    #[error("year {year}: {what} {value:?} is not a date (YYYY-MM-DD)")]
    BadDate { year: i32, what: String, value: String },
    #[error("year {year}: {what} {date} lies outside the year")]
    OutsideYear { year: i32, what: String, date: NaiveDate },
    #[error("year {year}: holiday {name} runs from {from} to {to}, which is backwards")]
    FromAfterTo { year: i32, name: String, from: NaiveDate, to: NaiveDate },
    #[error("{date} is both a holiday ({holiday}) and a make-up working day (for {workday})")]
    HolidayAndWorkday { date: NaiveDate, holiday: String, workday: String },
    #[error("make-up working day {date} is a {weekday}, not a Saturday or Sunday")]
    WorkdayNotWeekend { date: NaiveDate, weekday: Weekday },
    #[error("year {year}: make-up working day {date} is for {name:?}, which is not a holiday of that year")]
    UnknownHoliday { year: i32, date: NaiveDate, name: String },
    #[error("{date} is listed twice ({first} and {second})")]
    ListedTwice { date: NaiveDate, first: String, second: String },
    #[error("year {0} is listed twice")]
    DuplicateYear(i32),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    years: Vec<YearJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearJson {
    year: i32,
    source: String,
    holidays: Vec<HolidayJson>,
    #[serde(default)]
    workdays: Vec<WorkdayJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayJson {
    name: String,
    #[serde(default, rename = "name_en")]
    _name_en: String,
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkdayJson {
    date: String,
    #[serde(rename = "for")]
    for_holiday: String,
}

/// A date of the entry for `year`. The last week of the previous December is
/// allowed too: a New Year arrangement may begin there (the 2012 notice made
/// Saturday 2011-12-31 a make-up working day).
fn parse_date(year: i32, what: &str, value: &str) -> Result<NaiveDate, CalendarError> {
    let date = NaiveDate::from_str(value).map_err(|_| CalendarError::BadDate {
        year,
        what: what.to_string(),
        value: value.to_string(),
    })?;
    let late_december = date.year() + 1 == year && date.month() == 12 && date.day() >= 25;
    if date.year() != year && !late_december {
        return Err(CalendarError::OutsideYear { year, what: what.to_string(), date });
    }
    Ok(date)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The Beijing date of an instant.
fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&china_offset()).date_naive()
}

/// 24:00 Beijing time of `date`, i.e. 00:00 of the next day, in UTC.
fn end_of_day(date: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
    Some(midnight.and_local_timezone(china_offset()).single()?.with_timezone(&Utc))
}

impl Calendar {
    /// Reads and checks a holidays file (see `data/README.md` for its shape).
    pub fn from_json(json: &str) -> Result<Calendar, CalendarError> {
        let file: FileJson = serde_json::from_str(json).map_err(|e| CalendarError::Json(e.to_string()))?;
        let mut cal = Calendar::default();
        for entry in file.years {
            let year = entry.year;
            if cal.years.insert(year, entry.source).is_some() {
                return Err(CalendarError::DuplicateYear(year));
            }
            for h in &entry.holidays {
                let from = parse_date(year, &format!("holiday {} from", h.name), &h.from)?;
                let to = parse_date(year, &format!("holiday {} to", h.name), &h.to)?;
                if from > to {
                    return Err(CalendarError::FromAfterTo { year, name: h.name.clone(), from, to });
                }
                for date in from.iter_days().take_while(|d| *d <= to) {
                    cal.list(date, Listed::Holiday(h.name.clone()))?;
                }
            }
            for w in &entry.workdays {
                let date = parse_date(year, &format!("make-up working day for {}", w.for_holiday), &w.date)?;
                if !entry.holidays.iter().any(|h| h.name == w.for_holiday) {
                    return Err(CalendarError::UnknownHoliday { year, date, name: w.for_holiday.clone() });
                }
                if !is_weekend(date) {
                    return Err(CalendarError::WorkdayNotWeekend { date, weekday: date.weekday() });
                }
                cal.list(date, Listed::Workday(w.for_holiday.clone()))?;
            }
        }
        Ok(cal)
    }

    fn list(&mut self, date: NaiveDate, what: Listed) -> Result<(), CalendarError> {
        let describe = |l: &Listed| match l {
            Listed::Holiday(n) => format!("holiday {n}"),
            Listed::Workday(n) => format!("make-up working day for {n}"),
        };
        match (self.listed.get(&date), &what) {
            (None, _) => {
                self.listed.insert(date, what);
                Ok(())
            }
            (Some(Listed::Holiday(h)), Listed::Workday(w)) | (Some(Listed::Workday(w)), Listed::Holiday(h)) => {
                Err(CalendarError::HolidayAndWorkday { date, holiday: h.clone(), workday: w.clone() })
            }
            (Some(first), second) => {
                Err(CalendarError::ListedTwice { date, first: describe(first), second: describe(second) })
            }
        }
    }

    /// The shipped schedule, `data/holidays.json`, read once.
    ///
    /// It cannot fail at run time: the file is compiled in, and the test
    /// `official_calendar_parses` checks it.
    #[allow(clippy::expect_used, reason = "the compiled-in file is checked by the test official_calendar_parses")]
    pub fn official() -> &'static Calendar {
        static OFFICIAL: OnceLock<Calendar> = OnceLock::new();
        OFFICIAL.get_or_init(|| Calendar::from_json(OFFICIAL_JSON).expect("data/holidays.json is valid"))
    }

    /// Whether the file lists `year`. Outside the listed years, working days
    /// are simply Monday–Friday.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The listed years, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The notice a listed year was copied from.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year).map(String::as_str)
    }

    /// The (Chinese) name of the holiday `date` belongs to, if any.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        match self.listed.get(&date) {
            Some(Listed::Holiday(name)) => Some(name),
            _ => None,
        }
    }

    /// Make-up working days are working days; listed holidays are not;
    /// otherwise Monday–Friday are.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        match self.listed.get(&date) {
            Some(Listed::Workday(_)) => true,
            Some(Listed::Holiday(_)) => false,
            None => !is_weekend(date),
        }
    }

    /// The instant at which a clock of `span` started at `start` runs out
    /// (rules in the module documentation).
    pub fn deadline(&self, start: DateTime<Utc>, span: Span) -> DateTime<Utc> {
        self.run_out(start, local_date(start), span).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The instant at which a clock that ran out at `due` runs out again when
    /// extended by `span`. In days, the extension is counted from the last day
    /// of the original period (after any move past a holiday), as if a new
    /// period started that day.
    pub fn extend(&self, due: DateTime<Utc>, span: Span) -> DateTime<Utc> {
        // The last instant before `due` lies on the period's last day (due at
        // 24:00 of D) or on the day of `due` (an hourly clock).
        let last = due.checked_sub_signed(Duration::nanoseconds(1)).unwrap_or(due);
        self.run_out(due, local_date(last), span).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// `span` from `start`, days counted after `day`; `None` out of range.
    fn run_out(&self, start: DateTime<Utc>, day: NaiveDate, span: Span) -> Option<DateTime<Utc>> {
        match span.unit {
            _ if span.amount == 0 => Some(start),
            Unit::Hours => start.checked_add_signed(Duration::hours(i64::from(span.amount))),
            Unit::CalendarDays => end_of_day(self.last_calendar_day(day, span.amount)?),
            Unit::WorkingDays => end_of_day(self.nth_working_day_after(day, span.amount)?),
        }
    }

    /// The n-th day after `date`, or the first working day after it.
    fn last_calendar_day(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut last = date.checked_add_days(Days::new(u64::from(n)))?;
        while !self.is_working_day(last) {
            last = last.succ_opt()?;
        }
        Some(last)
    }

    /// The n-th working day strictly after `date` (`date` itself for n = 0).
    fn nth_working_day_after(&self, mut date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let mut left = n;
        while left > 0 {
            // Seven days in a row with no listed date hold five working days:
            // skip whole such weeks, leaving 1..=5 working days to count.
            let free_weeks = match self.listed.range(date.succ_opt()?..).next() {
                Some((next, _)) => ((*next - date).num_days() - 1) / 7,
                None => i64::MAX,
            };
            let weeks = free_weeks.min(i64::from((left - 1) / 5));
            if weeks > 0 {
                date = date.checked_add_days(Days::new(u64::try_from(weeks * 7).ok()?))?;
                left -= u32::try_from(weeks * 5).ok()?;
                continue;
            }
            date = date.succ_opt()?;
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        Some(date)
    }
}

/// The instant at which `fraction` (clamped to 0..=1) of the clock from
/// `start` to `due` has elapsed: `start + fraction × (due − start)`, to the
/// millisecond. E.g. 0.8 for near-due supervision at 80 %.
pub fn near_due_at(start: DateTime<Utc>, due: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let total = (due - start).num_milliseconds();
    let part = (total as f64 * fraction).round() as i64;
    start.checked_add_signed(Duration::milliseconds(part)).unwrap_or(due)
}

/// The unit of a [`Span`]. Serialised as `hours`, `calendar_days`,
/// `working_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Hours,
    CalendarDays,
    WorkingDays,
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Hours => "hours",
            Unit::CalendarDays => "calendar days",
            Unit::WorkingDays => "working days",
        })
    }
}

/// The length of a clock. Serialised as `{"amount": 15, "unit":
/// "working_days"}`; written for people as `"15 working days"`, `"60 days"`,
/// `"4 hours"` ([`FromStr`] and [`Display`](fmt::Display)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub amount: u32,
    pub unit: Unit,
}

impl Span {
    pub const fn hours(amount: u32) -> Span {
        Span { amount, unit: Unit::Hours }
    }
    pub const fn days(amount: u32) -> Span {
        Span { amount, unit: Unit::CalendarDays }
    }
    pub const fn working_days(amount: u32) -> Span {
        Span { amount, unit: Unit::WorkingDays }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = self.amount == 1;
        let word = match self.unit {
            Unit::Hours if one => "hour",
            Unit::Hours => "hours",
            Unit::CalendarDays if one => "day",
            Unit::CalendarDays => "days",
            Unit::WorkingDays if one => "working day",
            Unit::WorkingDays => "working days",
        };
        write!(f, "{} {word}", self.amount)
    }
}

impl FromStr for Span {
    type Err = ClockError;

    /// `<n> hour(s)`, `<n> day(s)`, `<n> calendar day(s)`, `<n> working
    /// day(s)`; case and spacing do not matter.
    fn from_str(s: &str) -> Result<Span, ClockError> {
        let bad = |reason: &str| ClockError::BadSpan { input: s.to_string(), reason: reason.to_string() };
        let text = s.trim().to_lowercase();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (number, rest) = text.split_at(digits);
        if number.is_empty() {
            return Err(bad("it must start with a whole number"));
        }
        let amount = number.parse::<u32>().map_err(|_| bad("the number is too large"))?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        let unit = match words.as_slice() {
            ["hour" | "hours"] => Unit::Hours,
            ["day" | "days"] | ["calendar", "day" | "days"] => Unit::CalendarDays,
            ["working", "day" | "days"] => Unit::WorkingDays,
            [] => return Err(bad("the unit is missing")),
            _ => return Err(bad("unknown unit")),
        };
        Ok(Span { amount, unit })
    }
}

/// Why a span or a clock is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("{input:?} is not a span ({reason}); write e.g. \"4 hours\", \"60 days\" or \"15 working days\"")]
    BadSpan { input: String, reason: String },
    #[error("an extension must be in {allowed}, not in {given}")]
    ExtensionUnit { given: Unit, allowed: Unit },
    #[error("an extension of {given} is longer than the maximum of {max}")]
    ExtensionTooLong { given: Span, max: Span },
}

/// The clocks of a petition (信访工作条例, 2022), read from configuration;
/// missing fields take their defaults, all in calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PetitionRules {
    /// From receipt to telling the petitioner whether it is accepted (15 days).
    pub acceptance: Span,
    /// From acceptance to the written answer (60 days).
    pub close_out: Span,
    /// The longest extension of the close-out, approved by the agency's head
    /// (30 days).
    pub extension_max: Span,
    /// From the answer, the petitioner's window to ask for a review (30 days).
    pub review_window: Span,
}

impl Default for PetitionRules {
    fn default() -> Self {
        PetitionRules {
            acceptance: Span::days(15),
            close_out: Span::days(60),
            extension_max: Span::days(30),
            review_window: Span::days(30),
        }
    }
}

impl PetitionRules {
    /// When acceptance must have been decided and told.
    pub fn acceptance_due(&self, cal: &Calendar, received_at: DateTime<Utc>) -> DateTime<Utc> {
        cal.deadline(received_at, self.acceptance)
    }

    /// When the accepted petition must be answered.
    pub fn close_out_due(&self, cal: &Calendar, accepted_at: DateTime<Utc>) -> DateTime<Utc> {
        cal.deadline(accepted_at, self.close_out)
    }

    /// The close-out deadline extended by `extension`, counted from the end of
    /// the original close-out period ([`Calendar::extend`]). Refused when
    /// `extension` is in another unit than `extension_max` or longer.
    pub fn extended_close_out_due(
        &self,
        cal: &Calendar,
        accepted_at: DateTime<Utc>,
        extension: Span,
    ) -> Result<DateTime<Utc>, ClockError> {
        self.check_extension(extension)?;
        Ok(cal.extend(self.close_out_due(cal, accepted_at), extension))
    }

    /// Refuses an extension in another unit than `extension_max`, or longer.
    pub fn check_extension(&self, extension: Span) -> Result<(), ClockError> {
        if extension.unit != self.extension_max.unit {
            return Err(ClockError::ExtensionUnit { given: extension.unit, allowed: self.extension_max.unit });
        }
        if extension.amount > self.extension_max.amount {
            return Err(ClockError::ExtensionTooLong { given: extension, max: self.extension_max });
        }
        Ok(())
    }

    /// Until when the petitioner may ask for a review of the answer.
    pub fn review_due(&self, cal: &Calendar, answered_at: DateTime<Utc>) -> DateTime<Utc> {
        cal.deadline(answered_at, self.review_window)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// An instant given in Beijing time.
    fn bj(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        china_offset().with_ymd_and_hms(y, m, d, h, min, 0).single().unwrap().with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn cal() -> &'static Calendar {
        Calendar::official()
    }

    #[test]
    fn official_calendar_parses() {
        let cal = Calendar::from_json(OFFICIAL_JSON).unwrap();
        assert_eq!(cal.years().collect::<Vec<_>>(), vec![2025, 2026]);
        assert!(cal.covers(2025));
        assert!(cal.source(2025).unwrap().contains("国办发明电〔2024〕12号"));
        let days: Vec<NaiveDate> = date(2025, 1, 1).iter_days().take_while(|d| d.year() == 2025).collect();
        // 元旦 1 + 春节 8 + 清明 3 + 劳动节 5 + 端午 3 + 国庆中秋 8 = 28.
        assert_eq!(days.iter().filter(|d| cal.holiday(**d).is_some()).count(), 28);
        // Weekend days that are working days: the 5 make-up working days.
        let make_up: Vec<NaiveDate> =
            days.iter().copied().filter(|d| is_weekend(*d) && cal.is_working_day(*d)).collect();
        assert_eq!(
            make_up,
            vec![date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)]
        );
        // 2026 (国办发明电〔2025〕7号): 元旦 3 + 春节 9 + 清明 3 + 劳动节 5 + 端午 3
        // + 中秋 3 + 国庆 7 = 33 days off, 6 make-up working days.
        assert!(cal.source(2026).unwrap().contains("国办发明电〔2025〕7号"));
        let days: Vec<NaiveDate> = date(2026, 1, 1).iter_days().take_while(|d| d.year() == 2026).collect();
        assert_eq!(days.iter().filter(|d| cal.holiday(**d).is_some()).count(), 33);
        let make_up: Vec<NaiveDate> =
            days.iter().copied().filter(|d| is_weekend(*d) && cal.is_working_day(*d)).collect();
        assert_eq!(
            make_up,
            vec![
                date(2026, 1, 4),
                date(2026, 2, 14),
                date(2026, 2, 28),
                date(2026, 5, 9),
                date(2026, 9, 20),
                date(2026, 10, 10)
            ]
        );
        assert_eq!(&cal, Calendar::official());
        // 365 days − 104 weekend days − 28 holidays + 5 make-up days, plus the
        // holidays on a weekend (subtracted twice): 01-01 is a Wednesday;
        // 春节 02-01/02, 清明 04-05/06, 劳动节 05-03/04, 端午 05-31/06-01,
        // 国庆 10-04/05 → 10. 365 − 104 − 28 + 10 + 5 = 248.
        assert_eq!(days.iter().filter(|d| cal.is_working_day(**d)).count(), 248);
    }

    #[test]
    fn spring_festival_days() {
        let cal = cal();
        assert!(cal.is_working_day(date(2025, 1, 26)), "make-up Sunday");
        assert!(cal.is_working_day(date(2025, 2, 8)), "make-up Saturday");
        for d in date(2025, 1, 28).iter_days().take_while(|d| *d <= date(2025, 2, 4)) {
            assert!(!cal.is_working_day(d), "{d} is in the Spring Festival");
            assert_eq!(cal.holiday(d), Some("春节"));
        }
        assert!(!cal.is_working_day(date(2025, 1, 25)), "an ordinary Saturday");
        assert!(!cal.is_working_day(date(2025, 3, 9)), "an ordinary Sunday");
        assert!(cal.is_working_day(date(2025, 1, 27)), "an ordinary Monday");
        assert!(!cal.is_working_day(date(2025, 1, 1)), "元旦 on a Wednesday");
    }

    #[test]
    fn working_days_across_the_spring_festival() {
        let cal = cal();
        // Fri 2025-01-24 10:00 Beijing. Counted after 01-24: Sat 01-25 no,
        // Sun 01-26 (make-up) 1, Mon 01-27 2, 01-28..02-04 holiday, Wed 02-05 3.
        // End of 02-05 = 02-06 00:00 Beijing = 02-05 16:00Z.
        let start = bj(2025, 1, 24, 10, 0);
        assert_eq!(start, utc("2025-01-24T02:00:00Z"));
        assert_eq!(cal.deadline(start, Span::working_days(3)), utc("2025-02-05T16:00:00Z"));
        // One working day: Sun 01-26 → 01-27 00:00 Beijing = 01-26 16:00Z.
        assert_eq!(cal.deadline(start, Span::working_days(1)), utc("2025-01-26T16:00:00Z"));
        // Two: Mon 01-27. Four: Thu 02-06. Six: Sat 02-08 (make-up).
        assert_eq!(cal.deadline(start, Span::working_days(2)), utc("2025-01-27T16:00:00Z"));
        assert_eq!(cal.deadline(start, Span::working_days(4)), utc("2025-02-06T16:00:00Z"));
        assert_eq!(cal.deadline(start, Span::working_days(6)), utc("2025-02-08T16:00:00Z"));
    }

    #[test]
    fn hours_ignore_the_calendar() {
        let start = bj(2025, 1, 28, 9, 30);
        assert_eq!(cal().deadline(start, Span::hours(4)), bj(2025, 1, 28, 13, 30));
        assert_eq!(cal().deadline(start, Span::hours(48)), bj(2025, 1, 30, 9, 30));
        assert_eq!(cal().deadline(start, Span::hours(0)), start);
        assert_eq!(cal().deadline(start, Span::days(0)), start);
        assert_eq!(cal().deadline(start, Span::working_days(0)), start);
    }

    #[test]
    fn calendar_days_end_on_a_working_day() {
        let cal = cal();
        // 2025-01-20 + 10 days = 01-30, in the Spring Festival; 02-01/02 are
        // holidays on a weekend, 02-03/04 holidays; Wed 02-05 works.
        assert_eq!(cal.deadline(bj(2025, 1, 20, 15, 0), Span::days(10)), utc("2025-02-05T16:00:00Z"));
        // 2025-01-20 + 3 days = Thu 01-23, a working day: ends 01-23 16:00Z.
        assert_eq!(cal.deadline(bj(2025, 1, 20, 15, 0), Span::days(3)), utc("2025-01-23T16:00:00Z"));
        // 2025-03-03 + 5 days = Sat 03-08 → Mon 03-10.
        assert_eq!(cal.deadline(bj(2025, 3, 3, 8, 0), Span::days(5)), utc("2025-03-10T16:00:00Z"));
        // 2025-02-01 + 7 days = Sat 02-08, a make-up working day: no move.
        assert_eq!(cal.deadline(bj(2025, 2, 1, 8, 0), Span::days(7)), utc("2025-02-08T16:00:00Z"));
    }

    #[test]
    fn petition_acceptance_over_national_day() {
        // Received Sat 2025-09-20; + 15 days = Sun 10-05, in the National Day
        // holiday (10-01..10-08); Thu 10-09 works → ends 10-10 00:00 Beijing.
        let rules = PetitionRules::default();
        assert_eq!(rules.acceptance_due(cal(), bj(2025, 9, 20, 15, 0)), utc("2025-10-09T16:00:00Z"));
    }

    #[test]
    fn petition_close_out_and_extension() {
        let rules = PetitionRules::default();
        let cal = cal();
        // Accepted 2025-08-01; + 60 days = Tue 09-30 (31 days to 09-01, 29
        // more), a working day.
        let accepted = bj(2025, 8, 1, 10, 0);
        assert_eq!(rules.close_out_due(cal, accepted), utc("2025-09-30T16:00:00Z"));
        // + 30 days from 09-30 = Thu 10-30.
        assert_eq!(rules.extended_close_out_due(cal, accepted, Span::days(30)).unwrap(), utc("2025-10-30T16:00:00Z"));
        // Accepted 2025-08-03; + 60 = Thu 10-02, a holiday → Thu 10-09. The
        // extension counts from 10-09: + 30 = Sat 11-08 → Mon 11-10.
        let accepted = bj(2025, 8, 3, 10, 0);
        assert_eq!(rules.close_out_due(cal, accepted), utc("2025-10-09T16:00:00Z"));
        assert_eq!(rules.extended_close_out_due(cal, accepted, Span::days(30)).unwrap(), utc("2025-11-10T16:00:00Z"));
        // + 10 from 10-09 = Sun 10-19 → Mon 10-20.
        assert_eq!(rules.extended_close_out_due(cal, accepted, Span::days(10)).unwrap(), utc("2025-10-20T16:00:00Z"));
        let too_long = rules.extended_close_out_due(cal, accepted, Span::days(31)).unwrap_err();
        assert_eq!(too_long, ClockError::ExtensionTooLong { given: Span::days(31), max: Span::days(30) });
        assert_eq!(too_long.to_string(), "an extension of 31 days is longer than the maximum of 30 days");
        let other_unit = rules.extended_close_out_due(cal, accepted, Span::working_days(5)).unwrap_err();
        assert_eq!(other_unit.to_string(), "an extension must be in calendar days, not in working days");
    }

    #[test]
    fn petition_review_window() {
        // Answered 2025-03-05; + 30 = Fri 04-04, 清明 (04-04..04-06) → Mon 04-07.
        let rules = PetitionRules::default();
        assert_eq!(rules.review_due(cal(), bj(2025, 3, 5, 11, 0)), utc("2025-04-07T16:00:00Z"));
    }

    #[test]
    fn petition_rules_from_configuration() {
        let rules: PetitionRules =
            serde_json::from_str(r#"{"acceptance": {"amount": 10, "unit": "working_days"}}"#).unwrap();
        assert_eq!(rules.acceptance, Span::working_days(10));
        assert_eq!(rules.close_out, Span::days(60));
        let json = serde_json::to_value(PetitionRules::default()).unwrap();
        assert_eq!(json["review_window"], serde_json::json!({"amount": 30, "unit": "calendar_days"}));
        assert!(serde_json::from_str::<PetitionRules>(r#"{"acceptence": {"amount": 1, "unit": "hours"}}"#).is_err());
    }

    #[test]
    fn uncovered_year_is_monday_to_friday() {
        let cal = cal();
        assert!(!cal.covers(2030));
        assert!(!cal.covers(2024));
        // 2030-01-01 is a Tuesday: a working day here, since 2030 is not listed.
        assert!(cal.is_working_day(date(2030, 1, 1)));
        assert!(!cal.is_working_day(date(2030, 1, 5)), "a Saturday");
        // Fri 2030-01-04 + 1 working day = Mon 01-07.
        assert_eq!(cal.deadline(bj(2030, 1, 4, 9, 0), Span::working_days(1)), utc("2030-01-07T16:00:00Z"));
        let empty = Calendar::default();
        assert_eq!(empty.years().count(), 0);
        assert!(empty.is_working_day(date(2025, 1, 28)));
    }

    #[test]
    fn day_boundaries_in_beijing_time() {
        let cal = cal();
        // 2025-01-23T16:00Z is Fri 2025-01-24 00:00 Beijing: +1 working day is
        // Sun 01-26 (make-up) → 01-26 16:00Z.
        let midnight = utc("2025-01-23T16:00:00Z");
        assert_eq!(midnight, bj(2025, 1, 24, 0, 0));
        assert_eq!(cal.deadline(midnight, Span::working_days(1)), utc("2025-01-26T16:00:00Z"));
        // One minute earlier is Thu 2025-01-23 23:59 Beijing: +1 → Fri 01-24.
        let before = utc("2025-01-23T15:59:00Z");
        assert_eq!(before, bj(2025, 1, 23, 23, 59));
        assert_eq!(cal.deadline(before, Span::working_days(1)), utc("2025-01-24T16:00:00Z"));
        // 2025-01-24T15:59Z is Fri 01-24 23:59 Beijing: + 1 day = Sat 01-25, a
        // day off → Sun 01-26 (make-up) → 01-26 16:00Z.
        assert_eq!(cal.deadline(utc("2025-01-24T15:59:00Z"), Span::days(1)), utc("2025-01-26T16:00:00Z"));
        // 2025-01-24T16:30Z, the same UTC date, is Sat 01-25 00:30 Beijing:
        // + 1 day = Sun 01-26, a working day → 01-26 16:00Z too.
        assert_eq!(cal.deadline(utc("2025-01-24T16:30:00Z"), Span::days(1)), utc("2025-01-26T16:00:00Z"));
    }

    #[test]
    fn extend_from_an_hourly_due() {
        // A clock due at 14:00 Beijing on Mon 2025-03-03 extended by 1 day:
        // the period starts on 03-03, ends at the end of Tue 03-04.
        let due = bj(2025, 3, 3, 14, 0);
        assert_eq!(cal().extend(due, Span::days(1)), utc("2025-03-04T16:00:00Z"));
        assert_eq!(cal().extend(due, Span::hours(3)), bj(2025, 3, 3, 17, 0));
        // Due at the end of 03-03 (00:00 of 03-04): + 1 working day = 03-04.
        assert_eq!(cal().extend(bj(2025, 3, 4, 0, 0), Span::working_days(1)), utc("2025-03-04T16:00:00Z"));
    }

    #[test]
    fn near_due() {
        let start = utc("2025-03-03T00:00:00Z");
        let due = utc("2025-03-03T10:00:00Z");
        assert_eq!(near_due_at(start, due, 0.8), utc("2025-03-03T08:00:00Z"));
        assert_eq!(near_due_at(start, due, 0.0), start);
        assert_eq!(near_due_at(start, due, 1.5), due);
        assert_eq!(near_due_at(start, due, f64::NAN), start);
    }

    #[test]
    fn huge_spans_saturate() {
        let start = bj(2025, 1, 24, 10, 0);
        assert_eq!(cal().deadline(start, Span::working_days(u32::MAX)), DateTime::<Utc>::MAX_UTC);
        assert_eq!(cal().deadline(start, Span::days(u32::MAX)), DateTime::<Utc>::MAX_UTC);
        // 3_000_000 working days (about 11 500 years), skipped in weeks: fast.
        // Past the listed years, 5 more working days are 7 more days.
        let far = cal().deadline(start, Span::working_days(3_000_000));
        assert!(!is_weekend(local_date(far - Duration::days(1))));
        assert_eq!(cal().deadline(start, Span::working_days(3_000_005)), far + Duration::days(7));
    }

    fn refused(json: &str) -> String {
        Calendar::from_json(json).unwrap_err().to_string()
    }

    fn year_json(year: i32, holidays: &str, workdays: &str) -> String {
        format!(
            r#"{{"years": [{{"year": {year}, "source": "test", "holidays": [{holidays}], "workdays": [{workdays}]}}]}}"#
        )
    }

    #[test]
    fn refused_files() {
        let spring = r#"{"name": "春节", "name_en": "Spring Festival", "from": "2025-01-28", "to": "2025-02-04"}"#;
        assert!(Calendar::from_json(&year_json(2025, spring, r#"{"date": "2025-01-26", "for": "春节"}"#)).is_ok());

        assert!(refused("{").starts_with("holidays file: EOF while parsing"));
        assert!(refused(r#"{"years": [{"year": 2025}]}"#).starts_with("holidays file: missing field `source`"));
        assert!(refused(&year_json(2025, r#"{"name": "x", "form": "2025-01-01", "to": "2025-01-01"}"#, ""))
            .starts_with("holidays file: unknown field `form`"));

        assert_eq!(
            refused(&year_json(2025, r#"{"name": "春节", "from": "2025-02-30", "to": "2025-03-01"}"#, "")),
            r#"year 2025: holiday 春节 from "2025-02-30" is not a date (YYYY-MM-DD)"#
        );
        assert_eq!(
            refused(&year_json(2025, spring, r#"{"date": "26 Jan 2025", "for": "春节"}"#)),
            r#"year 2025: make-up working day for 春节 "26 Jan 2025" is not a date (YYYY-MM-DD)"#
        );
        assert_eq!(
            refused(&year_json(2025, r#"{"name": "国庆节", "from": "2025-10-01", "to": "2026-01-01"}"#, "")),
            "year 2025: holiday 国庆节 to 2026-01-01 lies outside the year"
        );
        assert_eq!(
            refused(&year_json(2025, spring, r#"{"date": "2024-12-21", "for": "春节"}"#)),
            "year 2025: make-up working day for 春节 2024-12-21 lies outside the year"
        );
        assert_eq!(
            refused(&year_json(2025, r#"{"name": "春节", "from": "2025-02-04", "to": "2025-01-28"}"#, "")),
            "year 2025: holiday 春节 runs from 2025-02-04 to 2025-01-28, which is backwards"
        );
        assert_eq!(
            refused(&year_json(2025, spring, r#"{"date": "2025-02-01", "for": "春节"}"#)),
            "2025-02-01 is both a holiday (春节) and a make-up working day (for 春节)"
        );
        assert_eq!(
            refused(&year_json(2025, spring, r#"{"date": "2025-02-07", "for": "春节"}"#)),
            "make-up working day 2025-02-07 is a Fri, not a Saturday or Sunday"
        );
        assert_eq!(
            refused(&year_json(2025, spring, r#"{"date": "2025-01-26", "for": "新年"}"#)),
            r#"year 2025: make-up working day 2025-01-26 is for "新年", which is not a holiday of that year"#
        );
        let twice = format!("{spring}, {}", r#"{"name": "除夕", "from": "2025-01-28", "to": "2025-01-28"}"#);
        assert_eq!(refused(&year_json(2025, &twice, "")), "2025-01-28 is listed twice (holiday 春节 and holiday 除夕)");
        let two_years = r#"{"years": [
            {"year": 2025, "source": "a", "holidays": []},
            {"year": 2025, "source": "b", "holidays": []}]}"#;
        assert_eq!(refused(two_years), "year 2025 is listed twice");
    }

    #[test]
    fn new_year_arrangement_may_begin_in_the_previous_december() {
        // The 2012 notice: 元旦 01-01..01-03, Saturday 2011-12-31 worked.
        let json = year_json(
            2012,
            r#"{"name": "元旦", "from": "2012-01-01", "to": "2012-01-03"}"#,
            r#"{"date": "2011-12-31", "for": "元旦"}"#,
        );
        let cal = Calendar::from_json(&json).unwrap();
        assert!(cal.is_working_day(date(2011, 12, 31)));
        assert!(!cal.is_working_day(date(2012, 1, 3)));
        assert!(cal.covers(2012) && !cal.covers(2011));
    }

    #[test]
    fn span_text() {
        for (text, span) in [
            ("15 working days", Span::working_days(15)),
            ("1 working day", Span::working_days(1)),
            ("60 days", Span::days(60)),
            ("1 day", Span::days(1)),
            ("4 hours", Span::hours(4)),
            ("1 hour", Span::hours(1)),
        ] {
            assert_eq!(text.parse::<Span>().unwrap(), span);
            assert_eq!(span.to_string(), text);
        }
        assert_eq!("  30  Calendar Days ".parse::<Span>().unwrap(), Span::days(30));
        assert_eq!("60days".parse::<Span>().unwrap(), Span::days(60));
        assert_eq!(
            "15 weeks".parse::<Span>().unwrap_err().to_string(),
            r#""15 weeks" is not a span (unknown unit); write e.g. "4 hours", "60 days" or "15 working days""#
        );
        assert_eq!(
            "days".parse::<Span>().unwrap_err(),
            ClockError::BadSpan { input: "days".into(), reason: "it must start with a whole number".into() }
        );
        assert!("-3 days".parse::<Span>().is_err());
        assert!("15".parse::<Span>().unwrap_err().to_string().contains("the unit is missing"));
        assert!("99999999999 days".parse::<Span>().unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn span_serde() {
        let span: Span = serde_json::from_str(r#"{"amount": 15, "unit": "working_days"}"#).unwrap();
        assert_eq!(span, Span::working_days(15));
        assert_eq!(serde_json::to_string(&Span::hours(4)).unwrap(), r#"{"amount":4,"unit":"hours"}"#);
        assert!(serde_json::from_str::<Span>(r#"{"amount": 15, "unit": "weeks"}"#).is_err());
        assert!(serde_json::from_str::<Span>(r#""15 days""#).is_err());
    }

    /// Working days counted one by one, without skipping weeks.
    fn naive_nth(cal: &Calendar, mut date: NaiveDate, n: u32) -> NaiveDate {
        let mut left = n;
        while left > 0 {
            date = date.succ_opt().unwrap();
            if cal.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    proptest! {
        #[test]
        fn working_day_deadlines(secs in 1_704_067_200i64..1_830_297_600, n in 0u32..60) {
            // Starts from 2024-01-01 to 2027-12-31 UTC.
            let cal = cal();
            let start = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let due = cal.deadline(start, Span::working_days(n));
            let next = cal.deadline(start, Span::working_days(n + 1));
            prop_assert!(due < next);
            prop_assert!(start <= due);
            // `next` ends at 24:00 Beijing of a working day.
            let last = local_date(next - Duration::nanoseconds(1));
            prop_assert!(cal.is_working_day(last));
            prop_assert_eq!(end_of_day(last), Some(next));
            prop_assert_eq!(last, naive_nth(cal, local_date(start), n + 1));
        }

        #[test]
        fn skipping_weeks_counts_like_one_by_one(secs in 1_704_067_200i64..1_830_297_600, n in 0u32..800) {
            let cal = cal();
            let start = local_date(DateTime::<Utc>::from_timestamp(secs, 0).unwrap());
            prop_assert_eq!(cal.nth_working_day_after(start, n), Some(naive_nth(cal, start, n)));
        }

        #[test]
        fn calendar_day_deadlines(secs in 1_704_067_200i64..1_830_297_600, n in 1u32..120) {
            let cal = cal();
            let start = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let due = cal.deadline(start, Span::days(n));
            let last = local_date(due - Duration::nanoseconds(1));
            prop_assert!(cal.is_working_day(last));
            prop_assert!(last >= local_date(start) + Days::new(u64::from(n)));
            // Every day between the n-th day and the last one is a day off.
            for d in (local_date(start) + Days::new(u64::from(n))).iter_days().take_while(|d| *d < last) {
                prop_assert!(!cal.is_working_day(d));
            }
            prop_assert!(due <= cal.deadline(start, Span::days(n + 1)));
        }
    }
}
