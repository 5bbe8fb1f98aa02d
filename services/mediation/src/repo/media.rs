//! The photos and videos tasks and reports name, as intake stored them
//! (read only; ADR 0002).

use std::collections::HashMap;

use gridwork_storage::entity::media;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

/// What has been uploaded of the media `ids`, by id.
pub async fn uploaded<C: ConnectionTrait>(db: &C, ids: Vec<String>) -> Result<HashMap<String, media::Model>, DbErr> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(media::Entity::find()
        .filter(media::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect())
}
