//! Electronic ledgers (台账电子化): cases and KPIs of a jurisdiction and
//! period as CSV or XLSX, with Chinese headers, streamed.
//!
//! - `GET /v1/ledgers/cases?jurisdiction=&from=&to=&format=csv|xlsx`: one
//!   row per case created in `[from, to]` (China-time days) whose place lies
//!   under the jurisdiction, read from the KPI facts (`kpi_case_facts`) in
//!   keyset-paginated pages of [`PAGE`] rows ordered by (creation time, case
//!   id). The facts carry no personal data; the petitioner and matter keys
//!   are not even read.
//! - `GET /v1/ledgers/kpis?jurisdiction=&period=&from=&to=&format=`: one row
//!   per period bucket, the same figures as `GET /v1/kpis`.
//!
//! Both need an analyst's, dispatcher's or admin's token whose scope covers
//! the jurisdiction (default: the caller's scope), like `GET /v1/kpis`.
//!
//! CSV (`text/csv; charset=utf-8`, with a UTF-8 byte-order mark so Excel
//! reads the Chinese, CRLF line ends) is streamed: the first page is read
//! before answering (a database that is down is a 503, not a broken
//! download), then each further page becomes one chunk as it is read; a
//! database error half-way ends the download with an error, which is
//! logged. Rates read `83.3% (5/6)`, or nothing when the denominator is 0;
//! times are China time, `YYYY-MM-DD HH:MM:SS`.
//!
//! XLSX is written page by page by a blocking task in constant-memory mode
//! (`rust_xlsxwriter`) into an anonymous temporary file, which is then
//! streamed in chunks with its length. Times are Excel date-times, rates
//! are numbers formatted `0.0%`, each followed by a `…（分子/分母）` column
//! holding the parts as `5/6`. A sheet holds at most 1,048,575 data rows;
//! a larger ledger is refused (400 `too_many_rows`): use CSV or a shorter
//! range.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom};

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use futures::stream::{self, Stream};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::case::{CaseStatus, Satisfaction};
use gridwork_domain::codes;
use gridwork_domain::kpi::{self, CaseFacts, Fcr, KpiRow, Ratio};
use gridwork_domain::petition::PetitionClass;
use gridwork_platform::auth::Caller;
use gridwork_platform::error::responses::{BadRequest, Forbidden, Unauthorized, Unavailable};
use gridwork_platform::ApiError;
use gridwork_storage::entity::{category, kpi_fact};
use rust_xlsxwriter::{Workbook, XlsxError};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::schema::{FormatName, LedgerFile, PeriodName};
use crate::State;

/// Rows read from the database at a time; one CSV chunk each.
pub const PAGE: u64 = 1_000;
/// The UTF-8 byte-order mark that makes Excel read a CSV file as UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
pub const CSV_TYPE: &str = "text/csv; charset=utf-8";
pub const XLSX_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// Data rows an XLSX sheet can hold below its header row.
const XLSX_MAX_ROWS: u32 = 1_048_575;
/// The size of the chunks an XLSX file is streamed in.
const XLSX_CHUNK: usize = 64 * 1024;

/// `GET /v1/ledgers/cases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CasesQuery {
    /// Administrative code (grid … province; 6, 9, 12 or 15 digits);
    /// default: the caller's scope.
    #[serde(default)]
    #[param(pattern = "^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub jurisdiction: Option<String>,
    /// First day of creation (China time), YYYY-MM-DD; default today. At
    /// most 3,700 days before `to`, and not after it.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day of creation (China time), YYYY-MM-DD; default today.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// The file's format (default csv).
    #[serde(default)]
    #[param(value_type = Option<FormatName>, inline)]
    pub format: Option<String>,
}

/// `GET /v1/ledgers/kpis`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpisQuery {
    /// Administrative code (grid … province; 6, 9, 12 or 15 digits);
    /// default: the caller's scope.
    #[serde(default)]
    #[param(pattern = "^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$")]
    pub jurisdiction: Option<String>,
    /// The bucket rows are summed by (default day).
    #[serde(default)]
    #[param(value_type = Option<PeriodName>, inline)]
    pub period: Option<String>,
    /// First day (China time), YYYY-MM-DD; default today. At most 3,700
    /// days before `to`, and not after it.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Last day (China time), YYYY-MM-DD; default today.
    #[serde(default)]
    pub to: Option<NaiveDate>,
    /// The file's format (default csv).
    #[serde(default)]
    #[param(value_type = Option<FormatName>, inline)]
    pub format: Option<String>,
}

/// The file format of a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Xlsx,
}

impl FileFormat {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("csv") => Ok(FileFormat::Csv),
            Some("xlsx") => Ok(FileFormat::Xlsx),
            Some(other) => Err(ApiError::bad_request(
                "invalid_format",
                format!("unknown format {other:?}: csv or xlsx"),
                "导出格式无效（csv 或 xlsx）",
            )
            .with_field("format")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Xlsx => "xlsx",
        }
    }
}

/// One column of a ledger. A rate column is one CSV column (`83.3% (5/6)`)
/// and two XLSX columns (the rate, then its parts).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// XLSX column width (characters).
    pub width: f64,
    pub rate: bool,
}

const fn col(name: &'static str, width: f64) -> Column {
    Column { name, width, rate: false }
}

const fn rate(name: &'static str) -> Column {
    Column { name, width: 12.0, rate: true }
}

/// The columns of the case ledger.
pub const CASE_COLUMNS: [Column; 18] = [
    col("案件编号", 38.0),
    col("网格", 17.0),
    col("社区", 14.0),
    col("乡镇（街道）", 12.0),
    col("县（市、区）", 12.0),
    col("事项类别", 16.0),
    col("承办渠道", 10.0),
    col("状态", 10.0),
    col("登记时间", 20.0),
    col("受理时间", 20.0),
    col("办结时间", 20.0),
    col("办结期限", 20.0),
    col("是否按期办结", 12.0),
    col("回访满意度", 10.0),
    col("信访类别", 8.0),
    col("是否上行", 8.0),
    col("是否重新办理", 12.0),
    col("一次性化解", 10.0),
];

/// The columns of the KPI ledger.
pub const KPI_COLUMNS: [Column; 19] = [
    col("统计周期起始", 12.0),
    col("受理量", 8.0),
    col("办结量", 8.0),
    rate("按期办结率"),
    rate("就地化解率"),
    rate("按期受理率"),
    col("积案数", 8.0),
    rate("满意率"),
    rate("参评率"),
    col("回访未接通数", 12.0),
    col("办结用时中位数（小时）", 20.0),
    col("信访量", 8.0),
    col("初次信访量", 10.0),
    rate("重复信访率"),
    rate("越级上行率"),
    rate("上行率"),
    rate("初次信访一次性化解率"),
    rate("初次信访一次性化解率（含观察期内）"),
    col("分类受理量", 40.0),
];

/// The header of the parts column that follows a rate column in XLSX.
pub fn parts_header(rate: &str) -> String {
    format!("{rate}（分子/分母）")
}

/// One cell of a ledger row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Label(&'static str),
    Count(u64),
    /// Shown in China time.
    Time(DateTime<Utc>),
    Day(NaiveDate),
    Rate(Ratio),
}

pub type Row = Vec<Cell>;

/// An instant as China (+08:00) wall-clock time.
fn china(at: DateTime<Utc>) -> NaiveDateTime {
    at.with_timezone(&kpi::china_offset()).naive_local()
}

/// `83.3% (5/6)`, or nothing when the denominator is 0.
pub fn rate_text(r: &Ratio) -> String {
    match r.rate {
        Some(x) if r.denominator > 0 => format!("{:.1}% ({}/{})", x * 100.0, r.numerator, r.denominator),
        _ => String::new(),
    }
}

impl Cell {
    /// The cell as CSV text. Free text that a spreadsheet would take for a
    /// formula gets a leading apostrophe.
    pub fn csv_text(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Cell::Empty => Cow::Borrowed(""),
            Cell::Text(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => Cow::Owned(format!("'{s}")),
            Cell::Text(s) => Cow::Borrowed(s),
            Cell::Label(s) => Cow::Borrowed(s),
            Cell::Count(n) => Cow::Owned(n.to_string()),
            Cell::Time(t) => Cow::Owned(china(*t).format("%Y-%m-%d %H:%M:%S").to_string()),
            Cell::Day(d) => Cow::Owned(d.format("%Y-%m-%d").to_string()),
            Cell::Rate(r) => Cow::Owned(rate_text(r)),
        }
    }
}

pub fn status_zh(s: CaseStatus) -> &'static str {
    match s {
        CaseStatus::Created => "待受理",
        CaseStatus::Accepted => "已受理",
        CaseStatus::Rejected => "不予受理",
        CaseStatus::Claimed => "已签收",
        CaseStatus::InProgress => "办理中",
        CaseStatus::Suspended => "已中止",
        CaseStatus::Resolved => "已办理",
        CaseStatus::Verified => "已核查",
        CaseStatus::Closed => "已结案",
    }
}

pub fn satisfaction_zh(s: Satisfaction) -> &'static str {
    match s {
        Satisfaction::Satisfied => "满意",
        Satisfaction::BasicallySatisfied => "基本满意",
        Satisfaction::Unsatisfied => "不满意",
        Satisfaction::Unanswered => "未接通",
    }
}

pub fn petition_class_zh(c: PetitionClass) -> &'static str {
    match c {
        PetitionClass::FirstTime => "初次",
        PetitionClass::Repeat => "重复",
        PetitionClass::Escalated => "越级",
    }
}

pub fn fcr_zh(f: Fcr) -> &'static str {
    match f {
        Fcr::Final => "是",
        Fcr::Failed => "否",
        Fcr::Pending => "观察期内",
        Fcr::Open => "未办结",
    }
}

fn yes_no(b: bool) -> Cell {
    Cell::Label(if b { "是" } else { "否" })
}

fn code(s: &str) -> Cell {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s.to_owned())
    }
}

/// A case's ledger row ([`CASE_COLUMNS`]); `categories` maps category codes
/// to Chinese names.
pub fn case_row(f: &CaseFacts, categories: &HashMap<String, String>) -> Row {
    let h = &f.hierarchy;
    vec![
        Cell::Text(f.case_id.to_string()),
        code(&h.grid),
        code(&h.community),
        code(&h.street),
        code(&h.county),
        Cell::Text(categories.get(&f.category).cloned().unwrap_or_else(|| f.category.clone())),
        Cell::Label(f.channel.name_zh()),
        Cell::Label(status_zh(f.status)),
        Cell::Time(f.created_at),
        f.accepted_at.map_or(Cell::Empty, Cell::Time),
        f.closed_at.map_or(Cell::Empty, Cell::Time),
        Cell::Time(f.due_at),
        f.closed_on_time().map_or(Cell::Empty, yes_no),
        f.satisfaction.map_or(Cell::Empty, |s| Cell::Label(satisfaction_zh(s))),
        f.petition.as_ref().map_or(Cell::Empty, |p| Cell::Label(petition_class_zh(p.class))),
        yes_no(f.transferred_up),
        yes_no(f.reopened),
        f.fcr().map_or(Cell::Empty, |x| Cell::Label(fcr_zh(x))),
    ]
}

/// A KPI row's ledger row ([`KPI_COLUMNS`]).
pub fn kpi_row(r: &KpiRow, categories: &HashMap<String, String>) -> Row {
    let by_category = r
        .volume_by_category
        .iter()
        .map(|(c, n)| format!("{}：{n}", categories.get(c).map_or(c.as_str(), String::as_str)))
        .collect::<Vec<_>>()
        .join("；");
    vec![
        Cell::Day(r.period_start),
        Cell::Count(r.volume),
        Cell::Count(r.closed),
        Cell::Rate(r.on_time_close_out),
        Cell::Rate(r.on_the_spot_resolution),
        Cell::Rate(r.on_time_acceptance),
        Cell::Count(r.backlog),
        Cell::Rate(r.satisfaction),
        Cell::Rate(r.participation),
        Cell::Count(r.callbacks_unanswered),
        r.median_hours_to_close.map_or(Cell::Empty, |h| Cell::Count(u64::from(h))),
        Cell::Count(r.petitions),
        Cell::Count(r.first_time_petitions),
        Cell::Rate(r.repeat_petition_rate),
        Cell::Rate(r.escalation_rate),
        Cell::Rate(r.transfer_up_rate),
        Cell::Rate(r.first_contact_resolution),
        Cell::Rate(r.first_contact_resolution_provisional),
        if by_category.is_empty() { Cell::Empty } else { Cell::Text(by_category) },
    ]
}

/// One CSV chunk: `rows`, after the byte-order mark and the header when
/// `header` is given.
pub fn csv_chunk(header: Option<&[Column]>, rows: &[Row]) -> Result<Bytes, ApiError> {
    let mut buf = Vec::with_capacity(256 * (rows.len() + 1));
    if header.is_some() {
        buf.extend_from_slice(BOM);
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(buf);
    if let Some(columns) = header {
        w.write_record(columns.iter().map(|c| c.name)).map_err(|e| ApiError::internal(&e))?;
    }
    for row in rows {
        for cell in row {
            w.write_field(cell.csv_text().as_bytes()).map_err(|e| ApiError::internal(&e))?;
        }
        w.write_record(std::iter::empty::<&[u8]>()).map_err(|e| ApiError::internal(&e))?;
    }
    let buf = w.into_inner().map_err(|e| ApiError::internal(&e))?;
    Ok(Bytes::from(buf))
}

/// The category names (Chinese) by code.
async fn category_names(db: &DatabaseConnection) -> Result<HashMap<String, String>, ApiError> {
    Ok(category::Entity::find()
        .all(db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?
        .into_iter()
        .map(|c| (c.code, c.name_zh))
        .collect())
}

/// The cases created in `[start, end)` under `prefix`, a page at a time,
/// ordered by (created_at, case_id) and resumed after the last row read.
struct CasePages {
    db: DatabaseConnection,
    prefix: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    after: Option<(DateTime<Utc>, String)>,
    done: bool,
    categories: HashMap<String, String>,
}

impl CasePages {
    async fn next(&mut self) -> Result<Option<Vec<Row>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut q = kpi_fact::Entity::find()
            .select_only()
            .columns([kpi_fact::Column::CaseId, kpi_fact::Column::CreatedAt, kpi_fact::Column::Facts])
            // Codes are digits: [prefix, prefix + ":") is every code under
            // it, and a range can use an index where LIKE cannot.
            .filter(kpi_fact::Column::Place.gte(self.prefix.as_str()))
            .filter(kpi_fact::Column::Place.lt(format!("{}:", self.prefix)))
            .filter(kpi_fact::Column::CreatedAt.gte(self.start))
            .filter(kpi_fact::Column::CreatedAt.lt(self.end));
        if let Some((at, id)) = &self.after {
            q =
                q.filter(Condition::any().add(kpi_fact::Column::CreatedAt.gt(*at)).add(
                    Condition::all().add(kpi_fact::Column::CreatedAt.eq(*at)).add(kpi_fact::Column::CaseId.gt(id)),
                ));
        }
        let page: Vec<(String, DateTime<Utc>, String)> = q
            .order_by_asc(kpi_fact::Column::CreatedAt)
            .order_by_asc(kpi_fact::Column::CaseId)
            .limit(PAGE)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        if (page.len() as u64) < PAGE {
            self.done = true;
        }
        let Some((id, at, _)) = page.last() else {
            return Ok(None);
        };
        self.after = Some((*at, id.clone()));
        let mut rows = Vec::with_capacity(page.len());
        for (_, _, facts) in &page {
            let f: CaseFacts = serde_json::from_str(facts).map_err(|e| ApiError::internal(&e))?;
            rows.push(case_row(&f, &self.categories));
        }
        Ok(Some(rows))
    }
}

/// Where a ledger's rows come from, a page at a time.
enum Pages {
    Cases(Box<CasePages>),
    /// Rows already computed (the KPI rows: one per period bucket), in pages.
    Ready(std::vec::IntoIter<Vec<Row>>),
}

impl Pages {
    async fn next(&mut self) -> Result<Option<Vec<Row>>, ApiError> {
        match self {
            Pages::Cases(c) => c.next().await,
            Pages::Ready(it) => Ok(it.next()),
        }
    }
}

/// What is being exported, for the file and the log.
struct Export {
    ledger: &'static str,
    sheet: &'static str,
    columns: &'static [Column],
    jurisdiction: String,
    filename: String,
}

/// The caller may read ledgers of the jurisdiction asked for (default: their
/// scope), which is returned.
fn authorize(actor: &Actor, jurisdiction: Option<&str>) -> Result<String, ApiError> {
    if !matches!(actor.role, Role::Analyst | Role::Dispatcher | Role::Admin) {
        return Err(ApiError::forbidden("ledgers are for analysts, dispatchers and admins"));
    }
    let jurisdiction = jurisdiction.map_or_else(|| actor.scope.clone(), str::to_owned);
    codes::level_of(&jurisdiction).map_err(|e| {
        ApiError::bad_request("invalid_jurisdiction", e.to_string(), "辖区代码无效").with_field("jurisdiction")
    })?;
    if !actor.covers(&jurisdiction) {
        return Err(ApiError::forbidden("that jurisdiction is outside your scope"));
    }
    Ok(jurisdiction)
}

/// The case ledger (案件台账): one row per case created in the range under
/// the jurisdiction, streamed as CSV (with a byte-order mark) or XLSX.
#[utoipa::path(get, path = "/v1/ledgers/cases", tag = "ledgers", operation_id = "case_ledger", params(CasesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ledger, as an attachment (`Content-Disposition`)",
            content(
                (LedgerFile = "text/csv"),
                (LedgerFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn case_ledger(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<CasesQuery>,
) -> Result<HttpResponse, ApiError> {
    let jurisdiction = authorize(&caller.0, q.jurisdiction.as_deref())?;
    let format = FileFormat::parse(q.format.as_deref())?;
    let (_, from, to) = crate::period_and_range(None, q.from, q.to)?;
    let prefix = codes::significant_prefix(&jurisdiction).map_err(|e| ApiError::internal(&e))?.to_owned();
    let start = crate::query::day_start(from)?;
    let end = crate::query::day_start(to)? + Duration::days(1);
    let categories = category_names(&state.db).await?;
    let pages = Pages::Cases(Box::new(CasePages {
        db: state.db.clone(),
        prefix,
        start,
        end,
        after: None,
        done: false,
        categories,
    }));
    let export = Export {
        ledger: "cases",
        sheet: "案件台账",
        columns: &CASE_COLUMNS,
        filename: format!("cases-{jurisdiction}-{from}-{to}.{}", format.as_str()),
        jurisdiction,
    };
    respond(export, format, pages).await
}

/// The KPI ledger (指标台账): one row per period bucket, the figures of
/// `GET /v1/kpis`, as CSV (with a byte-order mark) or XLSX.
#[utoipa::path(get, path = "/v1/ledgers/kpis", tag = "ledgers", operation_id = "kpi_ledger", params(KpisQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ledger, as an attachment (`Content-Disposition`)",
            content(
                (LedgerFile = "text/csv"),
                (LedgerFile = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            )),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn kpi_ledger(
    state: web::Data<State>,
    caller: Caller,
    q: web::Query<KpisQuery>,
) -> Result<HttpResponse, ApiError> {
    let jurisdiction = authorize(&caller.0, q.jurisdiction.as_deref())?;
    let format = FileFormat::parse(q.format.as_deref())?;
    let (period, from, to) = crate::period_and_range(q.period.as_deref(), q.from, q.to)?;
    let rows = crate::query::rows(&state.db, &jurisdiction, period, from, to).await?;
    let categories = category_names(&state.db).await?;
    let mut pages = Vec::new();
    let mut rows = rows.iter().map(|r| kpi_row(r, &categories)).peekable();
    while rows.peek().is_some() {
        pages.push(rows.by_ref().take(PAGE as usize).collect::<Vec<_>>());
    }
    let export = Export {
        ledger: "kpis",
        sheet: "指标台账",
        columns: &KPI_COLUMNS,
        filename: format!("kpis-{jurisdiction}-{}-{from}-{to}.{}", period.as_str(), format.as_str()),
        jurisdiction,
    };
    respond(export, format, Pages::Ready(pages.into_iter())).await
}

async fn respond(export: Export, format: FileFormat, mut pages: Pages) -> Result<HttpResponse, ApiError> {
    let disposition = (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", export.filename));
    match format {
        FileFormat::Csv => {
            // The first page is read before answering, so a failure there is
            // an error status rather than a truncated file.
            let first = pages.next().await?.unwrap_or_default();
            Ok(HttpResponse::Ok()
                .content_type(CSV_TYPE)
                .insert_header(disposition)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .streaming(csv_stream(export, first, pages)))
        }
        FileFormat::Xlsx => {
            let (file, len, rows) = xlsx_file(&export, pages).await?;
            tracing::info!(
                ledger = export.ledger,
                jurisdiction = %export.jurisdiction,
                format = "xlsx",
                rows,
                bytes = len,
                "ledger exported"
            );
            let body = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), XLSX_CHUNK);
            Ok(HttpResponse::Ok()
                .content_type(XLSX_TYPE)
                .insert_header(disposition)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .no_chunking(len)
                .streaming(body))
        }
    }
}

struct CsvState {
    export: Export,
    first: Option<Vec<Row>>,
    pages: Pages,
    rows: usize,
    done: bool,
}

/// The CSV file: byte-order mark, header and the first page, then one chunk
/// per further page.
fn csv_stream(export: Export, first: Vec<Row>, pages: Pages) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let state = CsvState { export, first: Some(first), pages, rows: 0, done: false };
    stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let (page, header) = match st.first.take() {
            Some(first) => (first, Some(st.export.columns)),
            None => match st.pages.next().await {
                Ok(Some(page)) => (page, None),
                Ok(None) => {
                    st.done = true;
                    tracing::info!(
                        ledger = st.export.ledger,
                        jurisdiction = %st.export.jurisdiction,
                        format = "csv",
                        rows = st.rows,
                        "ledger exported"
                    );
                    return None;
                }
                Err(e) => {
                    st.done = true;
                    tracing::error!(
                        ledger = st.export.ledger,
                        jurisdiction = %st.export.jurisdiction,
                        rows = st.rows,
                        error = %e,
                        "ledger export broken off"
                    );
                    return Some((Err(e), st));
                }
            },
        };
        st.rows += page.len();
        let chunk = csv_chunk(header, &page);
        if let Err(e) = &chunk {
            st.done = true;
            tracing::error!(ledger = st.export.ledger, error = %e, "ledger export broken off");
        }
        Some((chunk, st))
    })
}

enum Msg {
    Rows(Vec<Row>),
    Done,
}

/// Writes the ledger to an anonymous temporary XLSX file: the pages are read
/// here and written by a blocking task as they come. The file (rewound),
/// its length and the number of rows.
async fn xlsx_file(export: &Export, mut pages: Pages) -> Result<(std::fs::File, u64, u64), ApiError> {
    let (tx, rx) = mpsc::channel::<Msg>(2);
    let (sheet, columns) = (export.sheet, export.columns);
    let writer = tokio::task::spawn_blocking(move || write_xlsx(sheet, columns, rx));
    loop {
        match pages.next().await {
            Ok(Some(page)) => {
                if tx.send(Msg::Rows(page)).await.is_err() {
                    break; // the writer failed: its error follows
                }
            }
            Ok(None) => {
                // An error means the writer failed: its error follows.
                let _ = tx.send(Msg::Done).await;
                break;
            }
            // Dropping the sender makes the writer give up.
            Err(e) => return Err(e),
        }
    }
    drop(tx);
    match writer.await.map_err(|e| ApiError::internal(&e))?? {
        Some(out) => Ok(out),
        None => Err(ApiError::internal(&"the XLSX writer stopped before the end")),
    }
}

fn xlsx_error(e: XlsxError) -> ApiError {
    ApiError::internal(&e)
}

/// Writes the pages received on `rx` as one constant-memory sheet; `None`
/// if the channel closed without [`Msg::Done`].
fn write_xlsx(
    sheet: &str,
    columns: &[Column],
    mut rx: mpsc::Receiver<Msg>,
) -> Result<Option<(std::fs::File, u64, u64)>, ApiError> {
    use rust_xlsxwriter::Format;
    let bold = Format::new().set_bold();
    let percent = Format::new().set_num_format("0.0%");
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let day = Format::new().set_num_format("yyyy-mm-dd");
    let mut workbook = Workbook::new();
    let ws = workbook.add_worksheet_with_constant_memory().map_err(xlsx_error)?;
    ws.set_name(sheet).map_err(xlsx_error)?;
    let mut c: u16 = 0;
    for column in columns {
        ws.set_column_width(c, column.width).map_err(xlsx_error)?;
        ws.write_string_with_format(0, c, column.name, &bold).map_err(xlsx_error)?;
        c += 1;
        if column.rate {
            ws.set_column_width(c, 12).map_err(xlsx_error)?;
            ws.write_string_with_format(0, c, parts_header(column.name), &bold).map_err(xlsx_error)?;
            c += 1;
        }
    }
    ws.set_freeze_panes(1, 0).map_err(xlsx_error)?;
    let mut row: u32 = 0;
    loop {
        let page = match rx.blocking_recv() {
            Some(Msg::Rows(page)) => page,
            Some(Msg::Done) => break,
            None => return Ok(None),
        };
        for cells in page {
            if row >= XLSX_MAX_ROWS {
                return Err(ApiError::bad_request(
                    "too_many_rows",
                    format!("an XLSX sheet holds at most {XLSX_MAX_ROWS} rows: use CSV or a shorter range"),
                    "超出 XLSX 行数上限，请导出 CSV 或缩短统计区间",
                )
                .with_field("to"));
            }
            row += 1;
            let mut c: u16 = 0;
            for cell in &cells {
                match cell {
                    Cell::Empty => {}
                    Cell::Text(s) => {
                        ws.write_string(row, c, s).map_err(xlsx_error)?;
                    }
                    Cell::Label(s) => {
                        ws.write_string(row, c, *s).map_err(xlsx_error)?;
                    }
                    Cell::Count(n) => {
                        ws.write_number(row, c, *n as f64).map_err(xlsx_error)?;
                    }
                    Cell::Time(t) => {
                        ws.write_datetime_with_format(row, c, china(*t), &time).map_err(xlsx_error)?;
                    }
                    Cell::Day(d) => {
                        ws.write_datetime_with_format(row, c, *d, &day).map_err(xlsx_error)?;
                    }
                    Cell::Rate(r) => {
                        if let (Some(x), true) = (r.rate, r.denominator > 0) {
                            ws.write_number_with_format(row, c, x, &percent).map_err(xlsx_error)?;
                        }
                        c += 1;
                        ws.write_string(row, c, format!("{}/{}", r.numerator, r.denominator)).map_err(xlsx_error)?;
                    }
                }
                c += 1;
            }
        }
    }
    let mut file = tempfile::tempfile().map_err(|e| ApiError::internal(&e))?;
    workbook.save_to_writer(&mut file).map_err(xlsx_error)?;
    let len = file.seek(SeekFrom::End(0)).map_err(|e| ApiError::internal(&e))?;
    file.seek(SeekFrom::Start(0)).map_err(|e| ApiError::internal(&e))?;
    Ok(Some((file, len, u64::from(row))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;
    use gridwork_domain::case::Channel;
    use gridwork_domain::codes::Hierarchy;
    use gridwork_domain::petition::PetitionInfo;

    fn facts() -> CaseFacts {
        let created = Utc.with_ymd_and_hms(2025, 3, 1, 16, 30, 5).single().unwrap();
        let mut f = CaseFacts::opened(
            uuid::Uuid::nil(),
            Hierarchy::from_grid_code("371002001001001").unwrap(),
            "petition.land".into(),
            Channel::Petition,
            created,
            created + Duration::days(3),
            Some(PetitionInfo {
                petitioner_key: "secret-p".into(),
                matter_key: "secret-m".into(),
                class: PetitionClass::FirstTime,
            }),
        );
        f.status = CaseStatus::Closed;
        f.accepted_at = Some(created + Duration::hours(1));
        f.resolved_at = Some(created + Duration::days(1));
        f.closed_at = Some(created + Duration::days(2));
        f.satisfaction = Some(Satisfaction::BasicallySatisfied);
        f
    }

    #[test]
    fn rates_read_as_percent_with_parts() {
        assert_eq!(rate_text(&Ratio::new(5, 6)), "83.3% (5/6)");
        assert_eq!(rate_text(&Ratio::new(1, 1)), "100.0% (1/1)");
        assert_eq!(rate_text(&Ratio::new(0, 0)), "");
    }

    #[test]
    fn a_case_row_in_chinese_and_china_time_without_keys() {
        let names = HashMap::from([("petition.land".to_owned(), "土地征收".to_owned())]);
        let row = case_row(&facts(), &names);
        assert_eq!(row.len(), CASE_COLUMNS.len());
        let text: Vec<String> = row.iter().map(|c| c.csv_text().into_owned()).collect();
        assert_eq!(text[1..6], ["371002001001001", "371002001001", "371002001", "371002", "土地征收"]);
        assert_eq!(text[6..9], ["信访", "已结案", "2025-03-02 00:30:05"]);
        assert_eq!(text[12..], ["是", "基本满意", "初次", "否", "否", "观察期内"]);
        assert!(!text.iter().any(|t| t.contains("secret")));
    }

    #[test]
    fn csv_chunks_start_with_bom_and_header_and_guard_formulas() {
        let rows = vec![vec![Cell::Text("=1+1".into()), Cell::Count(3), Cell::Empty]];
        let cols = [col("甲", 1.0), col("乙", 1.0), rate("丙")];
        let first = csv_chunk(Some(&cols), &rows).unwrap();
        assert!(first.starts_with(BOM));
        assert_eq!(std::str::from_utf8(&first[3..]).unwrap(), "甲,乙,丙\r\n'=1+1,3,\r\n");
        let next = csv_chunk(None, &rows).unwrap();
        assert_eq!(&next[..], b"'=1+1,3,\r\n");
    }

    #[test]
    fn kpi_rows_fill_every_column() {
        let row = kpi::aggregate(
            &[facts()],
            kpi::Period::Month,
            NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
        );
        let cells = kpi_row(&row[0], &HashMap::new());
        assert_eq!(cells.len(), KPI_COLUMNS.len());
        assert_eq!(cells[1], Cell::Count(1));
        assert_eq!(cells[3].csv_text(), "100.0% (1/1)");
        assert_eq!(cells[18].csv_text(), "petition.land：1");
    }

    /// Pages of [`PAGE`] rows, resumed after the last (created_at, case_id)
    /// read: every case in range and place exactly once, in order, even
    /// where many share a creation instant across a page boundary.
    #[tokio::test]
    async fn keyset_pages_stream_every_case_once_in_order() {
        use futures::StreamExt;
        use sea_orm::{ActiveModelTrait, IntoActiveModel};
        let db = gridwork_storage::connect("sqlite::memory:", 1).await.unwrap();
        gridwork_storage::migrate(&db).await.unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 3, 2).unwrap();
        let start = crate::query::day_start(day).unwrap();
        let mut expected = Vec::new();
        let put = |at: DateTime<Utc>, grid: &str| {
            let mut f = facts();
            f.case_id = uuid::Uuid::new_v4();
            f.created_at = at;
            f.hierarchy = Hierarchy::from_grid_code(grid).unwrap();
            f.petition = None;
            kpi_fact::Model {
                case_id: f.case_id.to_string(),
                place: grid.to_owned(),
                created_at: at,
                closed_at: f.closed_at,
                petitioner_key: None,
                matter_key: None,
                version: 1,
                facts: serde_json::to_string(&f).unwrap(),
                matures_at: None,
            }
        };
        let mut models = Vec::new();
        for i in 0..2345 {
            // 7 cases per instant (with fractions of a second of 0, 3, 6 or 9
            // digits), so ties straddle the page boundaries.
            let at = start + Duration::nanoseconds(i / 7 * 1_234_567);
            let m = put(at, "371002001001001");
            expected.push((m.created_at, m.case_id.clone()));
            models.push(m);
        }
        // Outside the day or the jurisdiction.
        models.push(put(start - Duration::seconds(1), "371002001001001"));
        models.push(put(start + Duration::days(1), "371002001001001"));
        models.push(put(start + Duration::hours(1), "371003001001001"));
        for m in models {
            m.into_active_model().reset_all().insert(&db).await.unwrap();
        }
        expected.sort();
        let pages = Pages::Cases(Box::new(CasePages {
            db: db.clone(),
            prefix: "371002".into(),
            start,
            end: start + Duration::days(1),
            after: None,
            done: false,
            categories: HashMap::new(),
        }));
        let export = Export {
            ledger: "cases",
            sheet: "案件台账",
            columns: &CASE_COLUMNS,
            jurisdiction: "371002".into(),
            filename: String::new(),
        };
        let chunks: Vec<Bytes> = csv_stream(export, Vec::new(), pages).map(|c| c.unwrap()).collect::<Vec<_>>().await;
        assert_eq!(chunks.len(), 4, "header, then pages of 1000, 1000 and 345");
        let body: Vec<u8> = chunks.concat();
        let mut r = csv::Reader::from_reader(&body[BOM.len()..]);
        let ids: Vec<String> = r.records().map(|rec| rec.unwrap()[0].to_owned()).collect();
        let want: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn xlsx_headers_put_parts_after_rates() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Msg::Rows(vec![kpi_row(
            &kpi::aggregate(
                &[facts()],
                kpi::Period::Month,
                NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
                NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
            )[0],
            &HashMap::new(),
        )]))
        .unwrap();
        tx.try_send(Msg::Done).unwrap();
        let (_, len, rows) = write_xlsx("指标台账", &KPI_COLUMNS, rx).unwrap().unwrap();
        assert_eq!(rows, 1);
        assert!(len > 1000);
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        assert!(write_xlsx("x", &KPI_COLUMNS, rx).unwrap().is_none(), "no Done: given up");
    }
}
