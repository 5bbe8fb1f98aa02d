//! **gridwork-bench** — what measures gridwork rather than runs it: the
//! load generator (simulated phones), the province-scale grid-lookup and
//! KPI-query benchmarks, and the fault suite's tools (`scripts/faults.sh`).
//! Kept out of the `gridwork` crate so the binary operators run ships only
//! what they use.

pub mod faults;
pub mod grids_bench;
pub mod kpi_bench;
pub mod loadgen;
pub mod watch;
