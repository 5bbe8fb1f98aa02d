//! OpenAPI schema pieces shared by mediation's typed bodies: the enums of
//! the domain as string schemas.

use gridwork_domain::report::Urgency;
use gridwork_domain::{CaseStatus, Channel};
use utoipa::openapi::schema::Type;
use utoipa::openapi::{Object, ObjectBuilder};

/// A string that is one of `values`.
pub(crate) fn one_of<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
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
