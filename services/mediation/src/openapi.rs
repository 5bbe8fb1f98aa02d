//! mediation's part of the OpenAPI 3 description (utoipa): the dispatcher's
//! queues and cases (list, detail, actions, parties, the live stream), the
//! routing rules, the audit of personal-information reads, the grid
//! worker's phone (the open cases of their grid, their tasks) and the case
//! worker's task endpoints. The process serves it, merged with the other
//! services', at `/openapi.json`, with a browsable UI at `/docs/`.

use gridwork_platform::openapi::{at_least_trimmed, no_control, not_blank};
use utoipa::OpenApi;

use crate::cases::{act, counts, detail, list, mine};
use crate::tasks::{case_worker, phone};
use crate::{live, pii, routing};

#[derive(OpenApi)]
#[openapi(
    paths(
        list::list,
        counts::counts,
        detail::detail,
        act::act,
        pii::reveal,
        pii::audit,
        live::stream,
        routing::current,
        routing::replace,
        routing::versions,
        routing::dry_run,
        mine::my_grid_cases,
        phone::mine,
        phone::ack,
        phone::complete,
        case_worker::create,
        case_worker::of_case,
        case_worker::cancel,
    ),
    components(schemas(
        gridwork_platform::ApiError,
        crate::cases::publish::StreamEvent,
        crate::live::StreamReset,
        crate::cases::act::ActionIn,
    )),
    tags(
        (name = "cases", description = "The queues of a centre's one-stop dispute mediation (一站式矛盾纠纷调解) \
            and the work on each case"),
        (name = "routing", description = "Routing rules (data): which channel queue a report's case goes to"),
        (name = "audit", description = "Who read whose personal information"),
        (name = "phone", description = "What a grid worker's phone shows"),
        (name = "tasks", description = "Tasks for grid workers (网格员任务): 核查, 回访, 送达, 协助调解"),
    )
)]
pub struct MediationApi;

/// mediation's part of `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut api = MediationApi::openapi();
    // An acknowledgement's and an action's body are optional
    // (`request_body = Option<…>`), but when there is one it is an object,
    // never `null`.
    optional_body(&mut api, "/v1/me/tasks/{id}/ack", "AckIn");
    optional_body(&mut api, "/v1/cases/{id}/{action}", "ActionIn");
    constrained(api)
}

/// The POST body of `path` refers to the schema `name` (utoipa describes
/// an `Option<T>` body inline as nullable).
fn optional_body(api: &mut utoipa::openapi::OpenApi, path: &str, name: &str) {
    use utoipa::openapi::{Ref, RefOr};
    let op = api.paths.paths.get_mut(path).and_then(|p| p.post.as_mut());
    if let Some(RefOr::T(body)) = op.and_then(|op| op.request_body.as_mut()) {
        for content in body.content.values_mut() {
            if let RefOr::T(content) = content {
                content.schema = Some(RefOr::Ref(Ref::from_schema_name(name)));
            }
        }
    }
}

/// What mediation's handlers enforce on bodies, stated in the schema (see
/// `gridwork_platform::openapi`): (schema, property, keywords).
fn constraints() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use gridwork_domain::{Outcome, Satisfaction};
    use serde_json::json;
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.as_str()).collect();
    let satisfactions: Vec<&str> = Satisfaction::ALL.iter().map(|o| o.as_str()).collect();
    let code = "^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$";
    let span = r"^\s*[0-9]{1,9}\s*(hours?|(calendar\s+)?days?|working\s+days?)\s*$";
    let reason = json!({"maxLength": gridwork_domain::case::MAX_REASON_CHARS, "pattern": no_control()});
    vec![
        ("ActionIn", "reason", reason.clone()),
        ("ActionIn", "note", json!({"maxLength": gridwork_domain::text::MAX_NOTE_CHARS, "pattern": no_control()})),
        ("ActionIn", "outcome", json!({"enum": outcomes})),
        ("ActionIn", "satisfaction", json!({"enum": satisfactions})),
        ("ActionIn", "centre", json!({"pattern": code})),
        ("ActionIn", "extension", json!({"pattern": span})),
        ("CreateIn", "instructions", json!({"pattern": not_blank()})),
        ("CreateIn", "assignee", json!({"maxLength": crate::tasks::MAX_USER_ID, "pattern": no_control()})),
        ("CancelIn", "reason", json!({"pattern": not_blank()})),
        ("CompleteIn", "note", json!({"pattern": not_blank()})),
        (
            "SlaIn",
            "within",
            json!({"$replace": true, "oneOf": [
                {"type": "string", "pattern": span},
                {"type": "object", "required": ["amount", "unit"], "additionalProperties": false, "properties": {
                    "amount": {"type": "integer", "minimum": 0, "maximum": u32::MAX},
                    "unit": {"type": "string", "enum": ["hours", "calendar_days", "working_days"]},
                }},
            ]}),
        ),
        ("RevealIn", "reason", json!({"maxLength": crate::pii::MAX_REASON_CHARS, "pattern": at_least_trimmed(4)})),
    ]
}

/// `api` with [`constraints`] applied; the lists' `limit`s take any u64
/// (clamped); `GET /v1/cases/counts` needs its `by` (read as optional, so
/// that a caller without the role gets 403 before any 400 about the query).
fn constrained(api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let api = gridwork_platform::openapi::constrained(api, &constraints(), &["/v1/cases", "/v1/audit/pii-reads"]);
    let Ok(mut json) = serde_json::to_value(&api) else {
        return api;
    };
    if let Some(params) = json.pointer_mut("/paths/~1v1~1cases~1counts/get/parameters").and_then(|p| p.as_array_mut()) {
        for p in params.iter_mut().filter(|p| p["name"] == "by") {
            p["required"] = true.into();
            p["description"] = "`channel` (each channel queue) or `grid` (each grid; empty key: in no grid).".into();
        }
    }
    serde_json::from_value(json).unwrap_or(api)
}

#[cfg(test)]
mod tests {
    /// Every constraint lands on a property the types have.
    #[test]
    fn every_constraint_names_a_described_property() {
        let api = serde_json::to_value(super::spec()).unwrap();
        for (schema, property, keywords) in super::constraints() {
            let p = &api["components"]["schemas"][schema]["properties"][property];
            for (k, v) in keywords.as_object().unwrap().iter().filter(|(k, _)| *k != "$replace") {
                assert_eq!(&p[k], v, "{schema}.{property}.{k}: {p}");
            }
        }
    }

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
        let by = &json["paths"]["/v1/cases/counts"]["get"]["parameters"][0];
        assert_eq!((by["name"].as_str(), by["required"].as_bool()), (Some("by"), Some(true)), "{by}");
        // Acknowledging takes no body, or an empty object (never `null`).
        let ack = &json["paths"]["/v1/me/tasks/{id}/ack"]["post"]["requestBody"];
        assert_eq!(ack["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/AckIn");
        assert_ne!(ack["required"], true);
        let kind = &json["components"]["schemas"]["TaskView"]["properties"]["kind"]["enum"];
        assert_eq!(kind, &serde_json::json!(["verification", "follow_up", "delivery", "assist_mediation"]));
    }
}
