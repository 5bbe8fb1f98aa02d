//! intake's OpenAPI 3 description, generated from the handlers' and types'
//! annotations (utoipa). The process serves it, merged with the other
//! services', at `/openapi.json`, with a browsable UI at `/docs/`.

use gridwork_platform::openapi::{no_control, not_blank};
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
pub fn spec(categories: &[String], batch_max_items: usize) -> utoipa::openapi::OpenApi {
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
    constrained(api, batch_max_items)
}

/// What intake's validation enforces on request bodies (`NewReport::validate`,
/// `check_text`, the media id rule), stated in the schema so that a request
/// the schema allows is accepted and one it excludes is refused: (schema,
/// property, keywords to set). The types' own annotations say the rest.
fn constraints(batch_max_items: usize) -> Vec<(&'static str, &'static str, serde_json::Value)> {
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
        ("BatchIn", "reports", json!({"minItems": 1, "maxItems": batch_max_items})),
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

/// `api` with [`constraints`] applied; `GET /v1/me/reports?limit=` takes
/// any u64 (clamped to 1–200).
fn constrained(api: utoipa::openapi::OpenApi, batch_max_items: usize) -> utoipa::openapi::OpenApi {
    gridwork_platform::openapi::constrained(api, &constraints(batch_max_items), &["/v1/me/reports"])
}

#[cfg(test)]
mod tests {
    /// Every constraint lands on a property the types have (a renamed field
    /// would otherwise silently lose its constraint).
    #[test]
    fn every_constraint_names_a_described_property() {
        let api = serde_json::to_value(super::spec(&[], 100)).unwrap();
        for (schema, property, keywords) in super::constraints(100) {
            let p = &api["components"]["schemas"][schema]["properties"][property];
            for (k, v) in keywords.as_object().unwrap() {
                assert_eq!(&p[k], v, "{schema}.{property}.{k}: {p}");
            }
        }
    }

    #[test]
    fn the_category_enum_is_the_taxonomy() {
        let api = super::spec(&["dispute.neighbour".into(), "environment.noise".into()], 100);
        let json = serde_json::to_value(&api).unwrap();
        let category = &json["components"]["schemas"]["ReportIn"]["properties"]["category"];
        assert_eq!(category["enum"], serde_json::json!(["dispute.neighbour", "environment.noise"]));
    }
}
