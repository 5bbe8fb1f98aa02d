//! The live stream of a centre's queues: `GET /v1/centres/{code}/stream`
//! (server-sent events). Every committed change is published on the channel
//! of the case's centre and of every unit above it, through the fan-out
//! (Redis pub/sub across replicas, in-process in the embedded default), so
//! a dispatcher connected to any replica sees changes made on any replica.
//!
//! Each event's id is its position in the timeline table. A client that
//! reconnects with `Last-Event-ID` first gets what it missed, read from the
//! database (so any replica can resume it), emergencies first, then the
//! live feed. A fresh connection first gets the open emergency cases.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::{Actor, Role};
use gridwork_domain::{codes, CaseStatus};
use gridwork_platform::auth::Caller;
use gridwork_platform::ApiError;
use gridwork_storage::entity::{case, case_event};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::broadcast;

use crate::repo::Recorded;
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

fn payload(seq: i64, event_id: &str, kind: &str, m: &case::Model, now: DateTime<Utc>) -> String {
    serde_json::json!({
        "seq": seq,
        "event_id": event_id,
        "kind": kind,
        "case": crate::api::view(m.clone(), now),
    })
    .to_string()
}

/// Publishes one committed lifecycle change to every replica's subscribers:
/// the case's centre and those above it, and the centre it left if it moved.
pub async fn publish(state: &State, rec: &Recorded, m: &case::Model, now: DateTime<Utc>) {
    let body = payload(rec.seq, &rec.event_id.to_string(), rec.kind.as_str(), m, now);
    let mut targets = channels(&m.centre);
    if let Some(from) = &rec.from_centre {
        targets.extend(channels(from));
    }
    targets.sort();
    targets.dedup();
    for ch in targets {
        state.fanout.publish(&format!("queue:{ch}"), body.clone()).await;
    }
}

fn frame(seq: i64, kind: &str, payload: &str) -> Bytes {
    Bytes::from(format!("id: {seq}\nevent: {kind}\ndata: {payload}\n\n"))
}

/// Whether a mediator may see the case in `payload` (lead or assisting
/// channel); everyone else who may open the stream sees all of it.
fn visible(actor: &Actor, case: &serde_json::Value) -> bool {
    if actor.role != Role::Mediator {
        return true;
    }
    let lead = case["channel"].as_str().into_iter();
    let joint = case["joint"].as_array().into_iter().flatten().filter_map(|v| v.as_str());
    actor.covers_channel(lead.chain(joint))
}

/// What a reconnecting client missed: the events after `last` of the
/// centres under `prefix`, emergencies first; as (id, SSE event name,
/// payload).
async fn missed(
    state: &State,
    prefix: &str,
    last: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, String, String)>, ApiError> {
    let rows = case_event::Entity::find()
        .filter(case_event::Column::Id.gt(last))
        .filter(case_event::Column::Centre.starts_with(prefix))
        .order_by_asc(case_event::Column::Id)
        .limit(1000)
        .all(&state.db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut out = Vec::with_capacity(rows.len());
    for e in rows {
        // The case as it is now: the stream tells what changed, the case
        // what it is.
        let Some(m) =
            case::Entity::find_by_id(e.case_id.clone()).one(&state.db).await.map_err(|e| ApiError::unavailable(&e))?
        else {
            continue;
        };
        let emergency = m.channel == "emergency";
        let event = if emergency { "emergency" } else { "case" };
        out.push((emergency, e.id, event.to_owned(), payload(e.id, &e.event_id, &e.kind, &m, now)));
    }
    // Emergencies jump the line; the rest keep their order.
    out.sort_by_key(|(emergency, seq, ..)| (!emergency, *seq));
    Ok(out.into_iter().map(|(_, seq, kind, p)| (seq, kind, p)).collect())
}

/// Open emergency cases of the centres under `prefix`, for a fresh client.
async fn emergencies(state: &State, prefix: &str, now: DateTime<Utc>) -> Result<Vec<(i64, String, String)>, ApiError> {
    // Still to be handled: running or suspended.
    let open = CaseStatus::RUNNING.into_iter().chain([CaseStatus::Suspended]).map(CaseStatus::as_str);
    let rows = case::Entity::find()
        .filter(case::Column::Centre.starts_with(prefix))
        .filter(case::Column::Status.is_in(open))
        .filter(case::Column::Channel.eq("emergency"))
        .order_by_asc(case::Column::CreatedAt)
        .limit(200)
        .all(&state.db)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let mut out = Vec::with_capacity(rows.len());
    for m in rows {
        let last = case_event::Entity::find()
            .filter(case_event::Column::CaseId.eq(m.id.as_str()))
            .order_by_desc(case_event::Column::Id)
            .one(&state.db)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        if let Some(e) = last {
            out.push((e.id, "emergency".to_owned(), payload(e.id, &e.event_id, &e.kind, &m, now)));
        }
    }
    Ok(out)
}

struct Feed {
    actor: Actor,
    backlog: VecDeque<(i64, String, String)>,
    /// Ids sent from the backlog: the live feed may bring them again.
    replayed: HashSet<i64>,
    rx: broadcast::Receiver<String>,
}

/// `GET /v1/centres/{code}/stream`: every change of the queues of `code`
/// (and the centres under it) as it happens.
pub async fn stream(
    state: web::Data<State>,
    caller: Caller,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.0;
    crate::api::require_queue_worker(&actor).map_err(|e| ApiError::forbidden(e.to_string()))?;
    let code = path.into_inner();
    codes::level_of(&code)
        .map_err(|e| ApiError::bad_request("invalid_code", e.to_string(), "代码无效").with_field("code"))?;
    if !actor.covers(&code) {
        return Err(ApiError::forbidden("that centre is outside your scope"));
    }
    let prefix = codes::significant_prefix(&code)
        .map_err(|e| ApiError::bad_request("invalid_code", e.to_string(), "代码无效").with_field("code"))?
        .to_owned();
    let last = match req.headers().get("Last-Event-ID").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(v)) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID must be an event id of this stream",
                "Last-Event-ID 无效",
            )
        })?),
        Some(Err(_)) => {
            return Err(ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID must be an event id of this stream",
                "Last-Event-ID 无效",
            ))
        }
    };
    // Subscribe before reading the backlog, so nothing falls between.
    let rx =
        state.fanout.subscribe(&format!("queue:{code}")).ok_or_else(|| ApiError::internal(&"fan-out unavailable"))?;
    let now = Utc::now();
    let backlog: VecDeque<_> = match last {
        Some(last) => missed(&state, &prefix, last, now).await?,
        None => emergencies(&state, &prefix, now).await?,
    }
    .into_iter()
    .filter(|(_, _, p)| serde_json::from_str::<serde_json::Value>(p).is_ok_and(|v| visible(&actor, &v["case"])))
    .collect();
    let replayed = backlog.iter().map(|(s, ..)| *s).collect();
    let feed = Feed { actor, backlog, replayed, rx };
    let hello = futures::stream::once(async { Ok::<Bytes, actix_web::Error>(Bytes::from_static(b": connected\n\n")) });
    let events = futures::stream::unfold(feed, |mut f| async move {
        if let Some((seq, kind, p)) = f.backlog.pop_front() {
            return Some((Ok::<Bytes, actix_web::Error>(frame(seq, &kind, &p)), f));
        }
        loop {
            let item = match tokio::time::timeout(Duration::from_secs(5), f.rx.recv()).await {
                Ok(Ok(p)) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&p) else { continue };
                    let seq = v["seq"].as_i64().unwrap_or(0);
                    // Sent already in the backlog (of a resumed stream), or
                    // not for this mediator's channel.
                    if f.replayed.contains(&seq) || !visible(&f.actor, &v["case"]) {
                        continue;
                    }
                    let kind = if v["case"]["channel"] == "emergency" { "emergency" } else { "case" };
                    frame(seq, kind, &p)
                }
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    Bytes::from(format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n"))
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                // Keep the connection (and proxies) awake.
                Err(_) => Bytes::from_static(b": keep-alive\n\n"),
            };
            return Some((Ok::<Bytes, actix_web::Error>(item), f));
        }
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(events)))
}
