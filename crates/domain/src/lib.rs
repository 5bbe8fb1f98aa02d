//! The pure domain of gridwork: plain Rust types and rules, no I/O.
//!
//! Reports come in from grid workers, are assigned to a comprehensive grid
//! ([`geo::Hierarchy`]), become cases in a channel queue of the owning centre
//! ([`case`]), routed by data ([`routing`]), and are counted by the KPIs
//! ([`kpi`]). Protobuf, HTTP and database types convert to and from these at
//! the edges.

pub mod auth;
pub mod calendar;
pub mod case;
pub mod codes;
pub mod kpi;
pub mod petition;
pub mod petition_info;
pub mod report;
pub mod routing;
pub mod text;
pub mod urgency;

pub use case::{
    Case, CaseAction, CaseEventKind, CaseStatus, Channel, NewCase, Outcome, Priority, Satisfaction, Step,
    TransitionError,
};
pub use codes::{Hierarchy, Level};
pub use report::{Crs, Location, NewReport, Party, ReportStatus, Urgency};
