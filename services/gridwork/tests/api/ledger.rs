//! Electronic ledgers (台账电子化): the case and KPI ledgers of a
//! jurisdiction as CSV and XLSX, with Chinese headers and no personal data.

use crate::helpers;
use std::collections::HashMap;

use crate::helpers::{eventually, report, TestApp};
use gridwork_domain::auth::Role;
use gridwork_storage::entity::{case, kpi_fact};
use sea_orm::EntityTrait;
use serde_json::{json, Value};
use uuid::Uuid;

const CASE_HEADERS: [&str; 18] = [
    "案件编号",
    "网格",
    "社区",
    "乡镇（街道）",
    "县（市、区）",
    "事项类别",
    "承办渠道",
    "状态",
    "登记时间",
    "受理时间",
    "办结时间",
    "办结期限",
    "是否按期办结",
    "回访满意度",
    "信访类别",
    "是否上行",
    "是否重新办理",
    "一次性化解",
];

const KPI_HEADERS: [&str; 19] = [
    "统计周期起始",
    "受理量",
    "办结量",
    "按期办结率",
    "就地化解率",
    "按期受理率",
    "积案数",
    "满意率",
    "参评率",
    "回访未接通数",
    "办结用时中位数（小时）",
    "信访量",
    "初次信访量",
    "重复信访率",
    "越级上行率",
    "上行率",
    "初次信访一次性化解率",
    "初次信访一次性化解率（含观察期内）",
    "分类受理量",
];

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn open(app: &TestApp, body: Value) -> String {
    app.submit_and_wait_for_case(&body).await["id"].as_str().unwrap().to_owned()
}

struct Download {
    status: u16,
    content_type: String,
    disposition: String,
    body: Vec<u8>,
}

async fn download(app: &TestApp, token: &str, path: &str) -> Download {
    let r = app.http.get(format!("{}{path}", app.base)).bearer_auth(token).send().await.unwrap();
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let status = r.status().as_u16();
    Download { status, content_type, disposition, body: r.bytes().await.unwrap().to_vec() }
}

/// The header and the records of a CSV file that starts with a BOM.
fn parse_csv(body: &[u8]) -> (Vec<String>, Vec<HashMap<String, String>>) {
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM first");
    let mut r = csv::Reader::from_reader(&body[3..]);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows =
        r.records().map(|rec| header.iter().cloned().zip(rec.unwrap().iter().map(str::to_owned)).collect()).collect();
    (header, rows)
}

/// The rows of the first sheet of an XLSX file, as text.
fn parse_xlsx(body: &[u8]) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut wb: calamine::Xlsx<_> = calamine::Xlsx::new(std::io::Cursor::new(body.to_vec())).unwrap();
    let range = wb.worksheet_range_at(0).unwrap().unwrap();
    range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

async fn error(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    app.get(token, path).await
}

#[actix_web::test]
async fn case_and_kpi_ledgers_as_csv_and_xlsx() {
    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn_with(helpers::config(dir.path())).await;
    let d = app.dispatcher();
    let (lat, lon) = app.demo.demo_point;
    // A case closed with a satisfied callback, an open one, a petition.
    let closed = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.neighbourhood")).await;
    app.act_ok(&d, &closed, "claim", json!({})).await;
    app.act_ok(&d, &closed, "resolve", json!({"outcome": "mediated_agreement"})).await;
    app.act_ok(&d, &closed, "close", json!({})).await;
    app.act_ok(&d, &closed, "callback", json!({"satisfaction": "satisfied"})).await;
    let open_case = open(&app, report(&Uuid::new_v4().to_string(), lat, lon, "dispute.consumer")).await;
    let mut body = report(&Uuid::new_v4().to_string(), lat, lon, "petition.land_acquisition");
    body["parties"] = json!([{"name": "李四", "id_number": "371002198001011234"}]);
    let petition = open(&app, body).await;

    // Wait until analytics has folded every event of every case.
    eventually("analytics caught up", || async {
        let cases = case::Entity::find().all(&app.ctx.db).await.unwrap();
        let facts: HashMap<String, i64> = kpi_fact::Entity::find()
            .all(&app.ctx.db)
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.case_id, f.version))
            .collect();
        (cases.len() == 3 && cases.iter().all(|c| facts.get(&c.id) == Some(&c.version))).then_some(())
    })
    .await;

    let county = app.demo.demo_grid[..6].to_owned();
    let today = gridwork_domain::kpi::china_day(chrono::Utc::now());
    let analyst = app.analyst();
    let cases_path = format!("/v1/ledgers/cases?jurisdiction={county}&from={today}&to={today}");

    // The case ledger as CSV.
    let csv_file = download(&app, &analyst, &cases_path).await;
    assert_eq!(csv_file.status, 200, "{}", String::from_utf8_lossy(&csv_file.body));
    assert_eq!(csv_file.content_type, "text/csv; charset=utf-8");
    assert_eq!(csv_file.disposition, format!("attachment; filename=\"cases-{county}-{today}-{today}.csv\""));
    let text = String::from_utf8(csv_file.body.clone()).unwrap();
    assert!(!text.contains("李四") && !text.contains("371002198001011234"), "no personal data: {text}");
    let (header, rows) = parse_csv(&csv_file.body);
    assert_eq!(header, CASE_HEADERS);
    assert_eq!(rows.len(), 3, "{text}");
    let row = |id: &str| rows.iter().find(|r| r["案件编号"] == id).unwrap_or_else(|| panic!("{id} in {text}"));
    let c = row(&closed);
    assert_eq!(
        (c["状态"].as_str(), c["回访满意度"].as_str(), c["是否按期办结"].as_str(), c["事项类别"].as_str()),
        ("已结案", "满意", "是", "邻里纠纷"),
        "{c:?}"
    );
    assert_eq!(c["网格"], app.demo.demo_grid);
    assert_eq!(c["信访类别"], "");
    assert_eq!(c["一次性化解"], "");
    // China time, to the second.
    let created = chrono::NaiveDateTime::parse_from_str(&c["登记时间"], "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(created.date(), today);
    let o = row(&open_case);
    assert_eq!((o["办结时间"].as_str(), o["是否按期办结"].as_str(), o["回访满意度"].as_str()), ("", "", ""));
    let p = row(&petition);
    assert_eq!((p["信访类别"].as_str(), p["承办渠道"].as_str(), p["一次性化解"].as_str()), ("初次", "信访", "未办结"));

    // The same as XLSX.
    let xlsx_file = download(&app, &analyst, &format!("{cases_path}&format=xlsx")).await;
    assert_eq!(xlsx_file.status, 200, "{}", String::from_utf8_lossy(&xlsx_file.body));
    assert_eq!(xlsx_file.content_type, XLSX);
    assert_eq!(xlsx_file.disposition, format!("attachment; filename=\"cases-{county}-{today}-{today}.xlsx\""));
    let sheet = parse_xlsx(&xlsx_file.body);
    assert_eq!(sheet[0], CASE_HEADERS);
    assert_eq!(sheet.len(), 4, "header and three cases");
    let ids: Vec<&str> = sheet[1..].iter().map(|r| r[0].as_str()).collect();
    for id in [&closed, &open_case, &petition] {
        assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
    }

    // The KPI ledger of the month.
    let kpis_path = format!("/v1/ledgers/kpis?jurisdiction={county}&period=month&from={today}&to={today}");
    let kpi_csv = download(&app, &analyst, &kpis_path).await;
    assert_eq!(kpi_csv.status, 200, "{}", String::from_utf8_lossy(&kpi_csv.body));
    assert_eq!(kpi_csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(kpi_csv.disposition, format!("attachment; filename=\"kpis-{county}-month-{today}-{today}.csv\""));
    let (header, rows) = parse_csv(&kpi_csv.body);
    assert_eq!(header, KPI_HEADERS);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["受理量"], "3", "{:?}", rows[0]);
    assert_eq!(rows[0]["办结量"], "1");
    assert_eq!(rows[0]["满意率"], "100.0% (1/1)");
    assert_eq!(rows[0]["信访量"], "1");
    assert_eq!(rows[0]["重复信访率"], "0.0% (0/1)");
    assert_eq!(rows[0]["初次信访一次性化解率"], "", "no petition decided yet");
    let kpi_xlsx = download(&app, &analyst, &format!("{kpis_path}&format=xlsx")).await;
    assert_eq!((kpi_xlsx.status, kpi_xlsx.content_type.as_str()), (200, XLSX));
    let sheet = parse_xlsx(&kpi_xlsx.body);
    let at = |name: &str| sheet[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} in {:?}", sheet[0]));
    assert_eq!(sheet[1][at("受理量")], "3");
    assert_eq!(sheet[1][at("满意率")], "1");
    assert_eq!(sheet[1][at("满意率（分子/分母）")], "1/1");

    // Refusals.
    let (status, _) = error(&app, &app.worker(), &cases_path).await;
    assert_eq!(status, 403, "grid workers get no ledgers");
    let (status, e) = error(&app, &analyst, &format!("{cases_path}&format=pdf")).await;
    assert_eq!((status, e["code"].as_str(), e["field"].as_str()), (400, Some("invalid_format"), Some("format")));
    let county_dispatcher = app.token("county-dispatcher-1", Role::Dispatcher, &county);
    let (status, _) = error(&app, &county_dispatcher, &cases_path).await;
    assert_eq!(status, 200, "their own county");
    let (status, _) = error(&app, &county_dispatcher, "/v1/ledgers/cases?jurisdiction=371000").await;
    assert_eq!(status, 403, "the city is outside a county dispatcher's scope");
    let (status, _) = error(&app, &county_dispatcher, "/v1/ledgers/kpis?jurisdiction=371000").await;
    assert_eq!(status, 403);
    let (status, e) = error(&app, &analyst, &format!("{cases_path}&colour=red")).await;
    assert_eq!(
        (status, e["code"].as_str(), e["field"].as_str()),
        (400, Some("unknown_field"), Some("colour")),
        "unknown parameters are refused"
    );
    let (status, _) = error(&app, &analyst, &format!("{cases_path}&period=month")).await;
    assert_eq!(status, 400, "the case ledger has no period");
    let (status, e) = error(&app, &analyst, "/v1/ledgers/cases?jurisdiction=12345").await;
    assert_eq!((status, e["field"].as_str()), (400, Some("jurisdiction")));
    let (status, e) = error(&app, &analyst, &format!("/v1/ledgers/kpis?jurisdiction={county}&period=fortnight")).await;
    assert_eq!((status, e["field"].as_str()), (400, Some("period")));
    let r = app.http.get(format!("{}{cases_path}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 401, "a token is needed");
    app.shutdown().await;
}
