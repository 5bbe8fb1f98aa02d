//! gridwork's integration tests: one test binary (so the whole stack is
//! linked once, not once per file), one module per area, each test against
//! the real app (`helpers::spawn` binds port 0, its own database, topics and
//! Redis prefix). Run with `scripts/test.sh` (cargo nextest: one process per
//! test, so a test that installs a global tracing subscriber, `spans`, keeps
//! it to itself).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

#[macro_use]
mod helpers;

mod attack;
mod auth;
mod batch;
mod console;
mod crash;
mod faults;
mod grids;
mod intake_load;
mod kafka;
mod kpi;
mod kpi_scenarios;
mod ledger;
mod media;
mod open311;
mod openapi;
mod phone;
mod pii;
mod pii_scan;
mod pipeline;
mod processes;
mod queues;
mod spans;
mod tasks;
mod validation;
