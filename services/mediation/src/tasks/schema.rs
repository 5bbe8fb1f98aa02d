//! The OpenAPI schema pieces of tasks: kinds, statuses, media ids.

use utoipa::openapi::schema::Type;
use utoipa::openapi::{Array, ArrayBuilder, Object, ObjectBuilder};

use super::{TaskKind, ACKNOWLEDGED, ASSIGNED, CANCELLED, DONE, MAX_MEDIA};
use crate::schema::one_of;

/// What a task asks for.
pub(crate) fn task_kind() -> Object {
    one_of(TaskKind::ALL.map(TaskKind::as_str))
}

/// A task's status, and the events of its history.
pub(crate) fn task_status() -> Object {
    one_of([ASSIGNED, ACKNOWLEDGED, DONE, CANCELLED])
}

/// Media ids as intake names them (the file's SHA-256, lowercase hex), at
/// most [`MAX_MEDIA`].
pub(crate) fn media_ids() -> Array {
    let id = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9a-f]{64}$")).build();
    ArrayBuilder::new().items(id).max_items(Some(MAX_MEDIA)).build()
}
