//! Tracing spans stay with their task: every consumed message runs in a span
//! naming its consumer group (`bus::consume`), and what a handler does runs
//! inside that one span only. A handler that keeps a span entered across an
//! `.await` leaves it entered on the thread while it waits, and whatever runs
//! there next nests in it: analytics' KPI fold once showed intake's message
//! span inside it (`message{group=analytics}:kpi_fold:message{group=intake}`).
//!
//! The test records, for every span created and every event logged, the
//! chain of spans it sits in, while reports become cases and their
//! lifecycle events are folded by analytics and followed by intake.

use crate::helpers;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A span as the chains show it: `name` or `name{group=…}`.
struct Label(String);

/// Keeps the `group` field of a span, if it has one, and a batch's `size`.
struct Group(Option<String>, Option<u64>);

impl Visit for Group {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "group" {
            self.0 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "group" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "size" {
            self.1 = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "size" {
            self.1 = u64::try_from(value).ok();
        }
    }
}

/// How many messages a chain's last span handles: 1 for a message span, its
/// size for a batch span, 0 for anything else, if it is `group`'s.
fn messages_of(chain: &[String], group: &str) -> u64 {
    let Some(last) = chain.last() else { return 0 };
    if !last.contains(&format!("group={group}")) {
        return 0;
    }
    if last.starts_with("message{") {
        1
    } else if last.starts_with("batch{") {
        last.split("size=").nth(1).and_then(|n| n.trim_end_matches('}').parse().ok()).unwrap_or(0)
    } else {
        0
    }
}

/// A consumer's span: one message's or one batch's.
fn consumer_span(label: &str) -> bool {
    label.starts_with("message") || label.starts_with("batch")
}

/// Every span chain seen, root first, the span or event itself last.
#[derive(Clone, Default)]
struct Chains(Arc<Mutex<Vec<Vec<String>>>>);

impl Chains {
    fn all(&self) -> Vec<Vec<String>> {
        self.0.lock().unwrap().clone()
    }
}

fn chain<S>(scope: Option<tracing_subscriber::registry::Scope<'_, S>>) -> Vec<String>
where
    S: for<'a> LookupSpan<'a>,
{
    scope
        .map(|scope| {
            scope
                .from_root()
                .map(|s| s.extensions().get::<Label>().map(|l| l.0.clone()).unwrap_or_else(|| s.name().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

impl<S> Layer<S> for Chains
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut group = Group(None, None);
        attrs.record(&mut group);
        let mut label = attrs.metadata().name().to_owned();
        match (group.0, group.1) {
            (Some(g), Some(n)) => {
                let _ = write!(label, "{{group={g} size={n}}}");
            }
            (Some(g), None) => {
                let _ = write!(label, "{{group={g}}}");
            }
            _ => {}
        }
        let Some(span) = ctx.span(id) else { return };
        span.extensions_mut().insert(Label(label));
        self.0.lock().unwrap().push(chain(ctx.span_scope(id)));
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut c = chain(ctx.event_scope(event));
        c.push(format!("event:{}", event.metadata().target()));
        self.0.lock().unwrap().push(c);
    }
}

#[tokio::test]
async fn a_message_runs_in_its_own_consumers_span_only() {
    let chains = Chains::default();
    // The process's subscriber (spans travel between threads: sqlx hands
    // them to its SQLite workers), installed before the app's own would be.
    let subscriber = tracing_subscriber::registry().with(chains.clone().with_filter(LevelFilter::INFO));
    tracing::subscriber::set_global_default(subscriber).expect("the only test of this binary installs the subscriber");

    let dir = tempfile::tempdir().unwrap();
    let app = helpers::spawn(dir.path()).await;
    let (worker, dispatcher) = (app.worker(), app.dispatcher());
    let (lat, lon) = app.demo.demo_point;
    let mut ids = Vec::new();
    // Categories of their own, so that no report is linked to another's case.
    for category in
        ["dispute.neighbourhood", "dispute.marriage_family", "dispute.property_management", "dispute.consumer"]
    {
        let id = uuid::Uuid::new_v4().to_string();
        let (s, body) = app.post(&worker, "/v1/reports", &helpers::report(&id, lat, lon, category)).await;
        assert_eq!(s, 201, "{body}");
        ids.push(id);
    }
    // Each case's lifecycle (created, claimed, resolved, closed) goes to
    // analytics' fold and to intake, which follows its reports.
    for id in &ids {
        let case_id = helpers::eventually("the report's case", || async {
            let (_, r) = app.get(&worker, &format!("/v1/reports/{id}")).await;
            r["case_id"].as_str().map(str::to_owned)
        })
        .await;
        helpers::claim_resolve_close(&app.http, &app.base, &dispatcher, &case_id, "mediated_agreement").await;
    }
    for id in &ids {
        helpers::eventually("intake saw the case closed", || async {
            let (_, r) = app.get(&worker, &format!("/v1/reports/{id}")).await;
            (r["status"] == "closed").then_some(())
        })
        .await;
    }
    let expected_folds = ids.len() * 4;
    helpers::eventually("analytics folded every lifecycle event", || async {
        let folds = chains.all().iter().filter(|c| c.last().is_some_and(|l| l.starts_with("kpi_fold"))).count();
        (folds >= expected_folds).then_some(())
    })
    .await;
    app.shutdown().await;

    let all = chains.all();
    // One by one or in batches (ADR 0037).
    let intake_messages: u64 = all.iter().map(|c| messages_of(c, "intake")).sum();
    assert!(intake_messages >= expected_folds as u64, "intake followed the lifecycle: {intake_messages} messages");
    let tangled: Vec<&Vec<String>> = all.iter().filter(|c| c.iter().filter(|l| consumer_span(l)).count() > 1).collect();
    assert!(tangled.is_empty(), "a message's span nested in another's: {:#?}", &tangled[..tangled.len().min(5)]);
    let folds: Vec<&Vec<String>> = all.iter().filter(|c| c.iter().any(|l| l.starts_with("kpi_fold"))).collect();
    assert!(!folds.is_empty());
    for c in folds {
        let fold = c.iter().position(|l| l.starts_with("kpi_fold")).unwrap();
        assert!(
            fold >= 1 && consumer_span(&c[fold - 1]) && c[fold - 1].contains("group=analytics"),
            "a KPI fold runs in analytics' message or batch span: {c:?}"
        );
        // Inside the fold: the fold's own work and its storage, nothing of
        // another task's.
        let own = [
            "event:gridwork_analytics",
            "event:gridwork_storage",
            "event:gridwork_platform",
            "event:sea_orm",
            "event:sqlx",
        ];
        assert!(
            c[fold + 1..].iter().all(|l| own.iter().any(|o| l.starts_with(o))),
            "nothing else runs inside a KPI fold: {c:?}"
        );
    }
}
