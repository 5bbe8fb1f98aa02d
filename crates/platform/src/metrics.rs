//! Prometheus metrics: one registry per process, HTTP metrics recorded by a
//! middleware, services add their own.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    counters: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, IntCounterVec>>>,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("gridwork".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route"),
            &["route"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        Ok(Metrics { registry, http_requests, http_duration, counters: Default::default() })
    }

    /// A histogram registered in this registry.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: Vec<f64>,
    ) -> Result<prometheus::Histogram, prometheus::Error> {
        let h = prometheus::Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
        self.registry.register(Box::new(h.clone()))?;
        Ok(h)
    }

    /// A counter registered in this registry (or the existing one of that name).
    pub fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, prometheus::Error> {
        // Services in one process may ask for the same counter: hand out the registered one.
        let mut counters = self.counters.lock().map_err(|_| prometheus::Error::Msg("poisoned".into()))?;
        if let Some(c) = counters.get(name) {
            return Ok(c.clone());
        }
        let c = IntCounterVec::new(Opts::new(name, help), labels)?;
        self.registry.register(Box::new(c.clone()))?;
        counters.insert(name.to_owned(), c.clone());
        Ok(c)
    }
}

/// Records every request's route, status and latency.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        m.http_requests.with_label_values(&[method.as_str(), route.as_str(), res.status().as_str()]).inc();
        m.http_duration.with_label_values(&[route.as_str()]).observe(start.elapsed().as_secs_f64());
    }
    Ok(res)
}

pub async fn metrics_endpoint(m: web::Data<Metrics>) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&m.registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(buf),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}
