//! mediation's part of the OpenAPI 3 description (utoipa): the grid
//! worker's phone (the open cases of their grid, their tasks) and the case
//! worker's task endpoints. The process serves it, merged with the other
//! services', at `/openapi.json`, with a browsable UI at `/docs/`.

use utoipa::OpenApi;

use crate::cases::mine;
use crate::tasks::{case_worker, phone};

#[derive(OpenApi)]
#[openapi(
    paths(
        mine::my_grid_cases,
        phone::mine,
        phone::ack,
        phone::complete,
        case_worker::create,
        case_worker::of_case,
        case_worker::cancel,
    ),
    components(schemas(gridwork_platform::ApiError)),
    tags(
        (name = "phone", description = "What a grid worker's phone shows"),
        (name = "tasks", description = "Tasks for grid workers (网格员任务): 核查, 回访, 送达, 协助调解"),
    )
)]
pub struct MediationApi;

/// mediation's part of `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{Ref, RefOr};
    let mut api = MediationApi::openapi();
    // An acknowledgement's body is optional (`request_body = Option<AckIn>`),
    // but when there is one it is an object, never `null`.
    let ack = api.paths.paths.get_mut("/v1/me/tasks/{id}/ack").and_then(|p| p.post.as_mut());
    if let Some(RefOr::T(body)) = ack.and_then(|op| op.request_body.as_mut()) {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name("AckIn")));
            }
        }
    }
    api
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_phone_and_task_operations_are_described() {
        let json = serde_json::to_value(super::spec()).unwrap();
        for (path, method) in [
            ("/v1/me/cases", "get"),
            ("/v1/me/tasks", "get"),
            ("/v1/me/tasks/{id}/ack", "post"),
            ("/v1/me/tasks/{id}/complete", "post"),
            ("/v1/cases/{id}/tasks", "post"),
            ("/v1/cases/{id}/tasks", "get"),
            ("/v1/cases/{id}/tasks/{task}/cancel", "post"),
        ] {
            let op = &json["paths"][path][method];
            assert!(op.is_object(), "{method} {path} missing");
            assert_eq!(op["security"], serde_json::json!([{"bearer": []}]), "{method} {path}");
            assert_eq!(
                op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ApiError",
                "{method} {path}"
            );
        }
        // Acknowledging takes no body, or an empty object (never `null`).
        let ack = &json["paths"]["/v1/me/tasks/{id}/ack"]["post"]["requestBody"];
        assert_eq!(ack["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/AckIn");
        assert_ne!(ack["required"], true);
        let kind = &json["components"]["schemas"]["TaskView"]["properties"]["kind"]["enum"];
        assert_eq!(kind, &serde_json::json!(["verification", "follow_up", "delivery", "assist_mediation"]));
    }
}
