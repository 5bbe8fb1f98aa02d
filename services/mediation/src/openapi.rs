//! mediation's part of the OpenAPI 3 description (utoipa): the grid
//! worker's phone (the open cases of their grid, their tasks) and the case
//! worker's task endpoints. The process serves it, merged with the other
//! services', at `/openapi.json`, with a browsable UI at `/docs/`.

use gridwork_domain::report::Urgency;
use gridwork_domain::{CaseStatus, Channel};
use utoipa::openapi::schema::Type;
use utoipa::openapi::{Array, ArrayBuilder, Object, ObjectBuilder};
use utoipa::OpenApi;

use crate::api;
use crate::tasks::{self, TaskKind};

#[derive(OpenApi)]
#[openapi(
    paths(
        api::my_grid_cases,
        tasks::mine,
        tasks::ack,
        tasks::complete,
        tasks::create,
        tasks::of_case,
        tasks::cancel,
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

/// A string that is one of `values`.
fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values)).build()
}

/// A case's status.
pub(crate) fn case_status() -> Object {
    one_of(CaseStatus::ALL.map(CaseStatus::as_str))
}

/// The status of a case that is still open (neither closed nor rejected).
pub(crate) fn open_case_status() -> Object {
    one_of(CaseStatus::ALL.into_iter().filter(|s| s.is_open()).map(CaseStatus::as_str))
}

/// A case's (lead) channel.
pub(crate) fn channel() -> Object {
    one_of(Channel::ALL.map(Channel::as_str))
}

/// A case's urgency.
pub(crate) fn urgency() -> Object {
    one_of([Urgency::Normal, Urgency::Urgent, Urgency::Emergency].map(Urgency::as_str))
}

/// What a task asks for.
pub(crate) fn task_kind() -> Object {
    one_of(TaskKind::ALL.map(TaskKind::as_str))
}

/// A task's status, and the events of its history.
pub(crate) fn task_status() -> Object {
    one_of([tasks::ASSIGNED, tasks::ACKNOWLEDGED, tasks::DONE, tasks::CANCELLED])
}

/// Media ids as intake names them (the file's SHA-256, lowercase hex), at
/// most [`tasks::MAX_MEDIA`].
pub(crate) fn media_ids() -> Array {
    let id = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9a-f]{64}$")).build();
    ArrayBuilder::new().items(id).max_items(Some(tasks::MAX_MEDIA)).build()
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
