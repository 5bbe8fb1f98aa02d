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
    api
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_category_enum_is_the_taxonomy() {
        let api = super::spec(&["dispute.neighbour".into(), "environment.noise".into()]);
        let json = serde_json::to_value(&api).unwrap();
        let category = &json["components"]["schemas"]["ReportIn"]["properties"]["category"];
        assert_eq!(category["enum"], serde_json::json!(["dispute.neighbour", "environment.noise"]));
    }
}
