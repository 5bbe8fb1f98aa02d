//! How a report's or a task's photos and videos are named in answers: one
//! schema for intake's report views and mediation's case detail and tasks.
//! Each service reads the `media` table itself (ADR 0002 lists mediation's
//! read); this builds the answer from what it read.

use std::collections::HashMap;

use gridwork_storage::entity::media;
use serde::Serialize;
use utoipa::ToSchema;

/// A photo or video a report or a task's result names, and whether it has
/// arrived yet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MediaRef {
    pub id: String,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    pub url: String,
}

/// `ids` as references, in their order, with what `uploaded` holds of them.
pub fn refs(ids: impl IntoIterator<Item = String>, uploaded: &HashMap<String, media::Model>) -> Vec<MediaRef> {
    ids.into_iter()
        .map(|id| {
            let m = uploaded.get(&id);
            MediaRef {
                available: m.is_some(),
                content_type: m.map(|m| m.content_type.clone()),
                size: m.map(|m| m.size),
                url: format!("/v1/media/{id}"),
                id,
            }
        })
        .collect()
}
