//! The shapes analytics' responses and queries are described with, where
//! the values are domain types that know nothing of HTTP (a KPI row, a
//! ratio, a level) or strings a handler parses itself (a period, a file
//! format). A leaf module: the handlers and [`crate::openapi`] use it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

/// A KPI period: the bucket rows are summed by.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodName {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// Public KPIs are published by calendar month only.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonthOnly {
    Month,
}

/// A level of the hierarchy.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelName {
    Province,
    City,
    County,
    Street,
    Community,
    Grid,
}

/// A ledger's file format.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Csv,
    Xlsx,
}

/// A rate with its parts, so every figure can be checked by hand.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Ratio)]
pub struct RatioSchema {
    pub numerator: u64,
    pub denominator: u64,
    /// `numerator / denominator`; `null` when the denominator is 0.
    pub rate: Option<f64>,
}

/// KPIs of one jurisdiction in one period (definitions in `docs/kpis.md`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KpiRow)]
pub struct KpiRowSchema {
    /// The first day of the period bucket.
    pub period_start: NaiveDate,
    /// Cases created in the period.
    pub volume: u64,
    /// Cases created, by category code.
    pub volume_by_category: BTreeMap<String, u64>,
    /// Cases closed in the period.
    pub closed: u64,
    /// 按期办结率: closed by their due time ÷ closed.
    pub on_time_close_out: RatioSchema,
    /// 就地化解率: closed without escalation and never reopened ÷ closed.
    pub on_the_spot_resolution: RatioSchema,
    /// 按期受理率: accepted or rejected by the acceptance deadline ÷ decided.
    pub on_time_acceptance: RatioSchema,
    /// 积案: cases open at the end of the period (as known now).
    pub backlog: u64,
    /// 满意率: (satisfied + basically satisfied) ÷ callbacks answered.
    pub satisfaction: RatioSchema,
    /// 参评率: callbacks answered ÷ cases closed.
    pub participation: RatioSchema,
    /// Callbacks nobody answered, of cases closed in the period.
    pub callbacks_unanswered: u64,
    /// Median hours from creation to close of the cases closed in the
    /// period; `null` when none closed.
    pub median_hours_to_close: Option<u32>,
    /// Petitions received in the period.
    pub petitions: u64,
    pub first_time_petitions: u64,
    /// 重复信访率: repeat petitions ÷ petitions received.
    pub repeat_petition_rate: RatioSchema,
    /// 越级上行率: escalated petitions ÷ petitions received.
    pub escalation_rate: RatioSchema,
    /// 上行率: cases created in the period and escalated since ÷ cases created.
    pub transfer_up_rate: RatioSchema,
    /// 初次信访事项一次性化解率 (final): resolved once ÷ decided.
    pub first_contact_resolution: RatioSchema,
    /// The same, also counting petitions still inside their observation window.
    pub first_contact_resolution_provisional: RatioSchema,
}

/// A published KPI row (评价结果公开): the figures of [`KpiRowSchema`], each
/// `null` where it is withheld (a small cell, or one that would give a
/// small cell away by difference), and named in `suppressed`. Categories
/// withheld are pooled as `other` in `volume_by_category` (`null` when the
/// volume itself is withheld).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PublicKpiRow)]
pub struct PublicKpiRowSchema {
    pub period_start: NaiveDate,
    pub volume: Option<u64>,
    pub volume_by_category: BTreeMap<String, Option<u64>>,
    pub closed: Option<u64>,
    pub on_time_close_out: Option<RatioSchema>,
    pub on_the_spot_resolution: Option<RatioSchema>,
    pub on_time_acceptance: Option<RatioSchema>,
    pub backlog: Option<u64>,
    pub satisfaction: Option<RatioSchema>,
    pub participation: Option<RatioSchema>,
    pub callbacks_unanswered: Option<u64>,
    pub median_hours_to_close: Option<u32>,
    pub petitions: Option<u64>,
    pub first_time_petitions: Option<u64>,
    pub repeat_petition_rate: Option<RatioSchema>,
    pub escalation_rate: Option<RatioSchema>,
    pub transfer_up_rate: Option<RatioSchema>,
    pub first_contact_resolution: Option<RatioSchema>,
    pub first_contact_resolution_provisional: Option<RatioSchema>,
    /// The figures withheld (set to `null`) in this row.
    pub suppressed: Vec<String>,
}

/// A ledger file: CSV or XLSX bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct LedgerFile(#[allow(dead_code)] Vec<u8>);
