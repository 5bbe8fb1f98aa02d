//! intake's OpenAPI 3 description, generated from the handlers' and types'
//! annotations (utoipa). The process serves it, merged with the other
//! services', at `/openapi.json`, with a browsable UI at `/docs/`.

use utoipa::OpenApi;

use crate::{auth, media, reports, users};

#[derive(OpenApi)]
#[openapi(
    paths(
        reports::submit::submit,
        reports::batch::submit_batch,
        reports::read::get_report,
        reports::read::my_reports,
        media::upload,
        media::download,
        auth::token::token,
        auth::session::revoke,
        auth::jwks,
        users::patch,
    ),
    components(schemas(gridwork_platform::ApiError)),
    tags(
        (name = "reports", description = "Reports (事件上报) from grid workers' phones"),
        (name = "phone", description = "What a grid worker's phone shows"),
        (name = "media", description = "Photos and short videos"),
        (name = "auth", description = "Tokens"),
        (name = "users", description = "User administration (admins, within their jurisdiction)"),
    )
)]
pub struct IntakeApi;

/// intake's part of `/openapi.json`. `categories` are the category codes
/// of the taxonomy this deployment loaded: a report's `category` is one of
/// them, so the spec lists them.
pub fn spec(categories: &[String]) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{RefOr, Schema};
    let mut api = IntakeApi::openapi();
    let report = api.components.as_mut().and_then(|c| c.schemas.get_mut("ReportIn"));
    if let Some(RefOr::T(Schema::Object(report))) = report {
        if let Some(RefOr::T(Schema::Object(category))) = report.properties.get_mut("category") {
            let mut codes = categories.to_vec();
            codes.sort();
            category.enum_values = Some(codes.into_iter().map(serde_json::Value::from).collect());
        }
    }
    constrained(api)
}

/// The control characters free text may not hold (`report::check_text`:
/// every `char::is_control` but tab, line feed and carriage return).
const CONTROL: &str = r"\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F";

/// Text without control characters.
fn no_control() -> String {
    format!("^[^{CONTROL}]*$")
}

/// Text without control characters and not only white space.
fn not_blank() -> String {
    format!("^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$")
}

/// What intake's validation enforces on request bodies (`NewReport::validate`,
/// `check_text`, the media id rule), stated in the schema so that a request
/// the schema allows is accepted and one it excludes is refused: (schema,
/// property, keywords to set). The types' own annotations say the rest.
fn constraints() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use gridwork_domain::report::{
        MAX_ADDRESS_CHARS, MAX_DESCRIPTION_CHARS, MAX_MATTER_CHARS, MAX_MEDIA, MAX_NAME_CHARS, MAX_NOTE_CHARS,
        MAX_PARTIES, MAX_PHONE_CHARS,
    };
    use serde_json::json;
    // A street (9 digits), a county or a city (6 digits, not ending in 0000,
    // which is a province).
    let centre = "^([0-9]{9}|[0-9]{2}([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9]))$";
    let outcomes: Vec<&str> = gridwork_domain::Outcome::ALL.iter().map(|o| o.as_str()).collect();
    vec![
        ("ReportIn", "address", json!({"maxLength": MAX_ADDRESS_CHARS, "pattern": no_control()})),
        ("ReportIn", "description", json!({"maxLength": MAX_DESCRIPTION_CHARS, "pattern": not_blank()})),
        ("ReportIn", "matter", json!({"maxLength": MAX_MATTER_CHARS, "pattern": no_control()})),
        ("ReportIn", "received_by", json!({"pattern": centre})),
        ("ReportIn", "parties", json!({"maxItems": MAX_PARTIES})),
        ("ReportIn", "media", json!({"maxItems": MAX_MEDIA, "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}})),
        ("LocationIn", "accuracy_m", json!({"minimum": 0})),
        ("PartyIn", "name", json!({"maxLength": MAX_NAME_CHARS, "pattern": not_blank()})),
        ("PartyIn", "phone", json!({"maxLength": MAX_PHONE_CHARS, "pattern": no_control()})),
        ("PartyIn", "id_number", json!({"maxLength": MAX_PHONE_CHARS, "pattern": no_control()})),
        ("OnSpotIn", "outcome", json!({"enum": outcomes})),
        ("OnSpotIn", "note", json!({"maxLength": MAX_NOTE_CHARS, "pattern": no_control()})),
    ]
}

/// `api` with [`constraints`] applied (through its JSON form, where a
/// keyword is a key).
fn constrained(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let Ok(mut json) = serde_json::to_value(&api) else {
        return api;
    };
    for (schema, property, keywords) in constraints() {
        let target = json.pointer_mut(&format!("/components/schemas/{schema}/properties/{property}"));
        if let (Some(target), Some(keywords)) = (target.and_then(|t| t.as_object_mut()), keywords.as_object()) {
            for (k, v) in keywords {
                target.insert(k.clone(), v.clone());
            }
        }
    }
    // `GET /v1/me/reports?limit=`: any u64 is accepted and clamped to
    // 1–200, so the schema allows every u64 (utoipa's int64 format would
    // make the values above i64::MAX, which the server takes, look invalid).
    if let Some(params) = json.pointer_mut("/paths/~1v1~1me~1reports/get/parameters").and_then(|p| p.as_array_mut()) {
        for p in params.iter_mut().filter(|p| p["name"] == "limit") {
            if let Some(schema) = p.get_mut("schema").and_then(|s| s.as_object_mut()) {
                schema.insert("format".into(), "uint64".into());
                schema.insert("minimum".into(), 0.into());
                schema.insert("maximum".into(), u64::MAX.into());
            }
        }
    }
    serde_json::from_value(json).unwrap_or(api)
}

#[cfg(test)]
mod tests {
    /// Every constraint lands on a property the types have (a renamed field
    /// would otherwise silently lose its constraint).
    #[test]
    fn every_constraint_names_a_described_property() {
        let api = serde_json::to_value(super::spec(&[])).unwrap();
        for (schema, property, keywords) in super::constraints() {
            let p = &api["components"]["schemas"][schema]["properties"][property];
            for (k, v) in keywords.as_object().unwrap() {
                assert_eq!(&p[k], v, "{schema}.{property}.{k}: {p}");
            }
        }
    }

    #[test]
    fn the_category_enum_is_the_taxonomy() {
        let api = super::spec(&["dispute.neighbour".into(), "environment.noise".into()]);
        let json = serde_json::to_value(&api).unwrap();
        let category = &json["components"]["schemas"]["ReportIn"]["properties"]["category"];
        assert_eq!(category["enum"], serde_json::json!(["dispute.neighbour", "environment.noise"]));
    }
}
