//! The clocks of a case: the close-out SLA of its channel and priority, and
//! for petitions the statutory clocks of 信访工作条例 (acceptance 15 days,
//! close-out 60 days from acceptance, one approved extension of up to 30),
//! counted on the working-day calendar.

use chrono::{DateTime, Utc};
use gridwork_domain::calendar::{Calendar, ClockError, PetitionRules, Span};
use gridwork_domain::routing::Route;
use gridwork_domain::Case;

pub struct Clocks {
    pub calendar: Calendar,
    pub petition: PetitionRules,
}

/// The deadlines of a new case.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub due_at: DateTime<Utc>,
    pub accept_due_at: Option<DateTime<Utc>>,
    /// The close-out clock that set `due_at`.
    pub within: Span,
}

impl Clocks {
    /// A new case's deadlines: petitions must be accepted within the
    /// statutory time and, until they are, are due as if accepted now.
    pub fn open(&self, route: &Route, petition: bool, now: DateTime<Utc>) -> Opened {
        if petition {
            Opened {
                due_at: self.petition.close_out_due(&self.calendar, now),
                accept_due_at: Some(self.petition.acceptance_due(&self.calendar, now)),
                within: self.petition.close_out,
            }
        } else {
            Opened { due_at: self.calendar.deadline(now, route.sla), accept_due_at: None, within: route.sla }
        }
    }

    /// A petition's close-out clock starts at its acceptance.
    pub fn on_accept(&self, case: &mut Case, now: DateTime<Utc>) {
        if case.petition.is_some() && !case.extended {
            case.due_at = self.petition.close_out_due(&self.calendar, now);
        }
    }

    /// The close-out deadline after an approved extension of `span`.
    pub fn extended(&self, case: &Case, span: Span) -> Result<DateTime<Utc>, ClockError> {
        self.petition.check_extension(span)?;
        Ok(self.calendar.extend(case.due_at, span))
    }
}
