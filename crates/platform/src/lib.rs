//! Service plumbing shared by every gridwork service: layered configuration,
//! the connected [`context::Context`], the HTTP error shape, tokens,
//! telemetry, metrics, the cache seam and the HTTP application with graceful
//! shutdown.

pub mod access_log;
pub mod auth;
pub mod body;
pub mod cache;
pub mod config;
pub mod consumers;
pub mod context;
pub mod error;
pub mod failpoint;
pub mod fanout;
pub mod health;
pub mod http;
pub mod keyfile;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod pii;
pub mod pipeline;
pub mod revocation;
pub mod routes;
pub mod telemetry;

pub use config::Config;
pub use context::{Context, Schema};
pub use error::ApiError;
pub use http::{Application, Routes, Service, StopHandle};
