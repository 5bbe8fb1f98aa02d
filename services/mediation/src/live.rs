//! The live stream of a centre's queues: `GET /v1/centres/{code}/stream`
//! (server-sent events). Every committed change is published on the channel
//! of the case's centre and of every unit above it, through the fan-out
//! (Redis pub/sub across replicas, in-process in the embedded default), so
//! a dispatcher connected to any replica sees changes made on any replica.
//!
//! Each event's id is its position in the timeline table. A client that
//! reconnects with `Last-Event-ID` first gets what it missed, read from the
//! database in one query (so any replica can resume it), emergencies first,
//! then the live feed; at most `mediation.stream_replay_max` events — a
//! client that missed more gets `event: reset` (reload the queue) instead.
//! A fresh connection first gets the open emergency cases.
//!
//! A stream outlives the request that opened it, so it keeps judging its
//! token: it ends (with `event: token_expired`) when the token expires, and
//! checks revocation every `mediation.stream_recheck_ms` (ending with
//! `event: token_revoked`).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gridwork_domain::auth::Actor;
use gridwork_domain::codes;
use gridwork_platform::auth::{Caller, TokenInfo};
use gridwork_platform::error::responses::{BadRequest, Forbidden, Unauthorized, Unavailable};
use gridwork_platform::fanout::Subscription;
use gridwork_platform::{ApiError, Context};
use tokio::sync::broadcast;

use crate::access;
use crate::cases::publish::{payload, topic};
use crate::error::{bad, bad_request, MediationError};
use crate::repo::stream as repo;
use crate::State;

fn frame(seq: i64, kind: &str, payload: &str) -> Bytes {
    Bytes::from(format!("id: {seq}\nevent: {kind}\ndata: {payload}\n\n"))
}

/// Whether the case in `payload` is for `actor` (a mediator sees only their
/// channels' cases, lead or assisting).
fn visible(actor: &Actor, case: &serde_json::Value) -> bool {
    let lead = case["channel"].as_str().into_iter();
    let joint = case["joint"].as_array().into_iter().flatten().filter_map(|v| v.as_str());
    access::sees_channels(actor, lead.chain(joint))
}

/// What a resuming client gets before the live feed.
enum Missed {
    /// The events after its last one (as (id, SSE event name, payload)),
    /// emergencies first.
    Events(Vec<(i64, String, String)>),
    /// More than `stream_replay_max`: it must reload; the newest event id
    /// under the code, from where the next resume starts.
    TooMany { newest: i64 },
}

/// What a reconnecting client missed: the events after `last` of the
/// centres under `prefix`, each with its case as it is now, read in one
/// query and at most `stream_replay_max` of them.
async fn missed(state: &State, prefix: &str, last: i64, now: DateTime<Utc>) -> Result<Missed, MediationError> {
    let max = state.stream_replay_max;
    let rows = repo::events_after(&state.db, prefix, last, max + 1).await?;
    if rows.len() as u64 > max {
        let newest = repo::newest(&state.db, prefix).await?.unwrap_or(last);
        return Ok(Missed::TooMany { newest });
    }
    let mut out = Vec::with_capacity(rows.len());
    // The stream tells what changed, the case what it is now.
    for (e, m) in rows {
        let Some(m) = m else { continue };
        let emergency = m.channel == "emergency";
        let event = if emergency { "emergency" } else { "case" };
        out.push((emergency, e.id, event.to_owned(), payload(e.id, &e.event_id, &e.kind, &m, now)));
    }
    // Emergencies jump the line; the rest keep their order.
    out.sort_by_key(|(emergency, seq, ..)| (!emergency, *seq));
    Ok(Missed::Events(out.into_iter().map(|(_, seq, kind, p)| (seq, kind, p)).collect()))
}

/// Open emergency cases of the centres under `prefix`, for a fresh client,
/// each with its latest event.
async fn emergencies(
    state: &State,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(i64, String, String)>, MediationError> {
    Ok(repo::open_emergencies(&state.db, prefix, 200)
        .await?
        .into_iter()
        .map(|(m, e)| (e.id, "emergency".to_owned(), payload(e.id, &e.event_id, &e.kind, &m, now)))
        .collect())
}

struct Feed {
    actor: Actor,
    token: TokenInfo,
    ctx: web::Data<Context>,
    backlog: VecDeque<(i64, String, String)>,
    /// Ids sent from the backlog: the live feed may bring them again.
    replayed: HashSet<i64>,
    /// After a reset, live events up to this id were committed before it:
    /// the reloading client has them.
    floor: i64,
    rx: Subscription,
    /// When the token expires (with the leeway requests get).
    expires: tokio::time::Instant,
    recheck: tokio::time::Interval,
    keep_alive: tokio::time::Interval,
    ended: bool,
}

/// The data of `event: reset`: the client missed too much to be told it;
/// it reloads the queue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StreamReset {
    pub missed_more_than: u64,
    /// What to reload.
    pub reload: &'static str,
}

/// The data of the last frame of a stream whose token no longer holds.
#[derive(Debug, serde::Serialize)]
struct Closing<'a> {
    code: &'a str,
    message: &'a str,
    message_zh: &'a str,
}

/// The last frame of a stream whose token no longer holds: the error's
/// code as the event name, the error as data.
fn closing(e: &ApiError) -> Bytes {
    let data = serde_json::to_string(&Closing { code: e.code, message: &e.message, message_zh: &e.message_zh })
        .unwrap_or_default();
    Bytes::from(format!("event: {}\ndata: {data}\n\n", e.code))
}

impl Feed {
    /// The next frame, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        if let Some((seq, kind, p)) = self.backlog.pop_front() {
            return Some(frame(seq, &kind, &p));
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(self.expires) => {
                    self.ended = true;
                    return Some(closing(&ApiError::unauthorized("token_expired", "the token has expired")));
                }
                _ = self.recheck.tick() => {
                    match gridwork_platform::revocation::is_revoked(&self.ctx, &self.token.jti).await {
                        Ok(false) => continue,
                        Ok(true) => {
                            self.ended = true;
                            return Some(closing(&ApiError::unauthorized("token_revoked", "the token has been revoked")));
                        }
                        // Cannot tell: the stream ends, like a request would
                        // be refused; the client resumes with Last-Event-ID.
                        Err(e) => {
                            self.ended = true;
                            return Some(closing(&e));
                        }
                    }
                }
                _ = self.keep_alive.tick() => {
                    // Keep the connection (and proxies) awake.
                    return Some(Bytes::from_static(b": keep-alive\n\n"));
                }
                got = self.rx.recv() => match got {
                    Ok(p) => {
                        let Ok(v) = serde_json::from_str::<serde_json::Value>(&p) else { continue };
                        let seq = v["seq"].as_i64().unwrap_or(0);
                        // Sent already in the backlog (of a resumed stream),
                        // before a reset, or not for this mediator's channel.
                        if seq <= self.floor || self.replayed.contains(&seq) || !visible(&self.actor, &v["case"]) {
                            continue;
                        }
                        let kind = if v["case"]["channel"] == "emergency" { "emergency" } else { "case" };
                        return Some(frame(seq, kind, &p));
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        return Some(Bytes::from(format!("event: lagged\ndata: {{\"missed\": {n}}}\n\n")));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            }
        }
    }
}

/// `GET /v1/centres/{code}/stream`: every change of the queues of `code`
/// (and the centres under it) as it happens, while the caller's token holds.
///
/// Server-sent events. `event: case` (or `emergency`) carries
/// `{"seq", "event_id", "kind", "case": CaseView}` with `id:` the event's
/// position; a reconnect with `Last-Event-ID` first gets what it missed
/// (emergencies first), or `event: reset` (reload the queue) when it missed
/// more than `mediation.stream_replay_max`. A fresh connection first gets
/// the open emergency cases. The stream ends with `event: token_expired` or
/// `event: token_revoked`; `event: lagged` tells a slow reader it missed
/// events. The bearer token goes in the `Authorization` header (use a
/// fetch-based reader: `EventSource` cannot send it).
#[utoipa::path(get, path = "/v1/centres/{code}/stream", tag = "cases", operation_id = "centre_stream",
    params(
        ("code" = String, Path, description = "A centre's code, or any unit's: its centres' queues",
            pattern = r"^([0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last event id the client has (resume)",
            pattern = r"^\s*-?[0-9]{1,18}\s*$"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stream (never ends while the token holds)",
            content_type = "text/event-stream", body = String),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    ))]
pub async fn stream(
    state: web::Data<State>,
    ctx: web::Data<Context>,
    caller: Caller,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, MediationError> {
    let Caller(actor, token) = caller;
    access::require_queue_worker(&actor)?;
    let code = path.into_inner();
    codes::level_of(&code).map_err(|e| bad("invalid_code", "code", e.to_string(), "代码无效"))?;
    access::require_covers(&actor, &code, "that centre is outside your scope")?;
    let prefix = codes::significant_prefix(&code)
        .map_err(|e| bad("invalid_code", "code", e.to_string(), "代码无效"))?
        .to_owned();
    let invalid_last = || {
        bad_request("invalid_last_event_id", "Last-Event-ID must be an event id of this stream", "Last-Event-ID 无效")
    };
    let last = match req.headers().get("Last-Event-ID").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(v)) => Some(v.parse::<i64>().map_err(|_| invalid_last())?),
        Some(Err(_)) => return Err(invalid_last()),
    };
    // Subscribe before reading the backlog, so nothing falls between.
    let rx = state
        .fanout
        .subscribe(&topic(&code))
        .ok_or_else(|| MediationError::Internal("fan-out unavailable".to_owned()))?;
    let now = Utc::now();
    let (mut backlog, floor) = match last {
        Some(last) => match missed(&state, &prefix, last, now).await? {
            Missed::Events(events) => (events, 0),
            Missed::TooMany { newest } => {
                let reset = serde_json::to_string(&StreamReset {
                    missed_more_than: state.stream_replay_max,
                    reload: "GET /v1/cases",
                })
                .unwrap_or_default();
                let mut b = vec![(newest, "reset".to_owned(), reset)];
                b.extend(emergencies(&state, &prefix, now).await?);
                (b, newest)
            }
        },
        None => (emergencies(&state, &prefix, now).await?, 0),
    };
    backlog.retain(|(_, kind, p)| {
        kind == "reset" || serde_json::from_str::<serde_json::Value>(p).is_ok_and(|v| visible(&actor, &v["case"]))
    });
    let replayed = backlog.iter().map(|(s, ..)| *s).collect();
    let left = (token.expires_at + state.token_leeway - now).to_std().unwrap_or(Duration::ZERO);
    let start = tokio::time::Instant::now();
    let mut recheck = tokio::time::interval_at(start + state.stream_recheck, state.stream_recheck);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keep_alive = tokio::time::interval_at(start + KEEP_ALIVE, KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        actor,
        token,
        ctx,
        backlog: backlog.into(),
        replayed,
        floor,
        rx,
        expires: start + left,
        recheck,
        keep_alive,
        ended: false,
    };
    let hello = futures::stream::once(async { Ok::<Bytes, actix_web::Error>(Bytes::from_static(b": connected\n\n")) });
    let events = futures::stream::unfold(feed, |mut f| async move {
        let item = f.next().await?;
        Some((Ok::<Bytes, actix_web::Error>(item), f))
    });
    use futures::StreamExt;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(events)))
}

/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
