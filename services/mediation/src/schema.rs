//! OpenAPI schema pieces shared by mediation's typed bodies: the enums of
//! the domain as string schemas.

use gridwork_domain::report::Urgency;
use gridwork_domain::{CaseStatus, Channel};
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::openapi::{Array, ArrayBuilder, Object, ObjectBuilder};

pub(crate) use gridwork_platform::openapi::one_of;

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

/// Several channels.
pub(crate) fn channels() -> Array {
    ArrayBuilder::new().items(channel()).build()
}

/// The action of `POST /v1/cases/{id}/{action}`.
pub(crate) fn action() -> Object {
    one_of(crate::error::ACTIONS.split([',', ' ']).filter(|a| !a.is_empty() && *a != "or"))
}

/// One status or several, comma-separated; `open` for every open one.
pub(crate) fn statuses() -> Object {
    let one = std::iter::once("open").chain(CaseStatus::ALL.map(CaseStatus::as_str)).collect::<Vec<_>>().join("|");
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(format!("^({one})(,({one}))*$"))).build()
}

/// The orderings of the queue.
pub(crate) fn sort() -> Object {
    one_of(crate::repo::cases::SORTS)
}

/// `o`, or `null` (an optional field the server also takes as `null`).
fn or_null(mut o: Object) -> Object {
    o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = o.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    o
}

/// A channel, or `null`.
pub(crate) fn channel_or_null() -> Object {
    or_null(channel())
}

/// An urgency, or `null`.
pub(crate) fn urgency_or_null() -> Object {
    or_null(urgency())
}

/// Several channels, or `null`.
pub(crate) fn channels_or_null() -> Array {
    let mut a = channels();
    a.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
    a
}
