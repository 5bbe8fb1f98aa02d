//! Photos and videos named by a report or a task's result, as the case's
//! workers see them: where to fetch each (`GET /v1/media/{id}`, scoped like
//! the case) and whether it has arrived yet (a phone may upload after it
//! reports).

use std::collections::HashMap;

use gridwork_storage::entity::media;
use serde::Serialize;
use utoipa::ToSchema;

// intake's report views have the same schema under the same name
// (gridwork_intake::reports::MediaRef): keep the two alike.
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

/// `ids` as references, with what `uploaded` holds of them.
pub fn refs(ids: Vec<String>, uploaded: &HashMap<String, media::Model>) -> Vec<MediaRef> {
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
