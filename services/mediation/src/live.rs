//! The live stream of a centre's queues: `GET /v1/centres/{code}/stream`
//! (server-sent events). Every committed change is published on the channel
//! of the case's centre and of every unit above it, through the fan-out, so
//! a dispatcher connected to any replica sees changes made on any replica.

use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use gridwork_domain::{codes, CaseEventKind};
use gridwork_platform::auth::Caller;
use gridwork_platform::ApiError;
use gridwork_storage::entity::case;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::State;

/// The channels a change of a case in `centre` goes to: the centre and every
/// unit above it (a county centre sees its streets' queues).
fn channels(centre: &str) -> Vec<String> {
    let mut out = vec![centre.to_owned()];
    if centre.len() > 6 {
        out.push(centre[..6].to_owned());
    }
    if centre.len() >= 6 {
        out.push(format!("{}00", &centre[..4]));
        out.push(format!("{}0000", &centre[..2]));
    }
    out.dedup();
    out
}

/// Publishes one lifecycle change to every replica's subscribers.
pub async fn publish(state: &State, event_id: Uuid, kind: CaseEventKind, m: &case::Model, now: DateTime<Utc>) {
    let payload = serde_json::json!({
        "event_id": event_id,
        "kind": kind.as_str(),
        "case": crate::api::view(m.clone(), now),
    })
    .to_string();
    for ch in channels(&m.centre) {
        state.fanout.publish(&format!("queue:{ch}"), payload.clone()).await;
    }
}

fn frame(payload: &str) -> Bytes {
    let id = serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v["event_id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    Bytes::from(format!("id: {id}\nevent: case\ndata: {payload}\n\n"))
}

/// `GET /v1/centres/{code}/stream`: every change of the queues of `code`
/// (and the centres under it) as it happens.
pub async fn stream(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0;
    if !actor.works_queues() {
        return Err(ApiError::forbidden("only dispatchers and mediators work case queues"));
    }
    let code = path.into_inner();
    codes::level_of(&code)
        .map_err(|e| ApiError::bad_request("invalid_code", e.to_string(), "代码无效").with_field("code"))?;
    if !actor.covers(&code) {
        return Err(ApiError::forbidden("that centre is outside your scope"));
    }
    let rx =
        state.fanout.subscribe(&format!("queue:{code}")).ok_or_else(|| ApiError::internal(&"fan-out unavailable"))?;
    let hello = futures::stream::once(async { Ok::<Bytes, actix_web::Error>(Bytes::from_static(b": connected\n\n")) });
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let item = match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Ok(payload)) => frame(&payload),
            Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                Bytes::from(format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n"))
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            // Keep the connection (and proxies) awake.
            Err(_) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<Bytes, actix_web::Error>(item), rx))
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(events)))
}
