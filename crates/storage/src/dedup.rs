//! Consumer-side de-duplication: delivery is at-least-once, so a consumer
//! records each event id it handled in the same transaction as its work.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, Set};

use crate::entity::consumed_event;

/// Records that `consumer` handles `event_id` now. Returns `false` when it
/// was handled before (the caller then skips the work). Call inside the
/// transaction that does the work.
pub async fn first_delivery<C: ConnectionTrait>(db: &C, consumer: &str, event_id: &str) -> Result<bool, DbErr> {
    let row = consumed_event::ActiveModel {
        consumer: Set(consumer.to_owned()),
        event_id: Set(event_id.to_owned()),
        consumed_at: Set(Utc::now()),
    };
    let res = consumed_event::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([consumed_event::Column::Consumer, consumed_event::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(res == 1)
}
