//! Cases in the one-stop mediation queues and their lifecycle.
//!
//! Every transition yields one or more [`CaseEventKind`]s; the caller records
//! each as a lifecycle event. Illegal transitions are refused with a
//! [`TransitionError`] that names the state and the action.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Actor;
use crate::codes::Hierarchy;
use crate::petition::PetitionInfo;
use crate::report::Urgency;

/// A queue of the one-stop platform (一站式矛盾纠纷调解).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 人民调解
    PeopleMediation,
    /// 行政调解
    AdministrativeMediation,
    /// 司法调解、诉调对接
    JudicialMediation,
    /// 信访
    Petition,
    /// 心理疏导
    Counselling,
    /// 法律援助
    LegalAid,
    /// 应急处置
    Emergency,
    /// 部门交办
    DepartmentDispatch,
    /// A county centre's triage queue for reports outside every grid.
    Triage,
}

impl Channel {
    pub const ALL: [Channel; 9] = [
        Channel::PeopleMediation,
        Channel::AdministrativeMediation,
        Channel::JudicialMediation,
        Channel::Petition,
        Channel::Counselling,
        Channel::LegalAid,
        Channel::Emergency,
        Channel::DepartmentDispatch,
        Channel::Triage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PeopleMediation => "people_mediation",
            Channel::AdministrativeMediation => "administrative_mediation",
            Channel::JudicialMediation => "judicial_mediation",
            Channel::Petition => "petition",
            Channel::Counselling => "counselling",
            Channel::LegalAid => "legal_aid",
            Channel::Emergency => "emergency",
            Channel::DepartmentDispatch => "department_dispatch",
            Channel::Triage => "triage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Channel::PeopleMediation => "人民调解",
            Channel::AdministrativeMediation => "行政调解",
            Channel::JudicialMediation => "司法调解",
            Channel::Petition => "信访",
            Channel::Counselling => "心理疏导",
            Channel::LegalAid => "法律援助",
            Channel::Emergency => "应急处置",
            Channel::DepartmentDispatch => "部门交办",
            Channel::Triage => "分拨",
        }
    }
}

/// Queue priority: 1 is the most urgent.
pub type Priority = u8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Created,
    Accepted,
    Rejected,
    Claimed,
    InProgress,
    Resolved,
    Verified,
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::Created,
        CaseStatus::Accepted,
        CaseStatus::Rejected,
        CaseStatus::Claimed,
        CaseStatus::InProgress,
        CaseStatus::Resolved,
        CaseStatus::Verified,
        CaseStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Created => "created",
            CaseStatus::Accepted => "accepted",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Claimed => "claimed",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Resolved => "resolved",
            CaseStatus::Verified => "verified",
            CaseStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        CaseStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the case is still being worked (counts as backlog).
    pub fn is_open(self) -> bool {
        !matches!(self, CaseStatus::Rejected | CaseStatus::Closed)
    }
}

/// How a case was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 调解成功，达成协议
    MediatedAgreement,
    /// 调解不成
    NotAgreed,
    /// 引导诉讼
    ReferredToLitigation,
    /// 撤回
    Withdrawn,
    /// 已处置
    Handled,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::MediatedAgreement,
        Outcome::NotAgreed,
        Outcome::ReferredToLitigation,
        Outcome::Withdrawn,
        Outcome::Handled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::MediatedAgreement => "mediated_agreement",
            Outcome::NotAgreed => "not_agreed",
            Outcome::ReferredToLitigation => "referred_to_litigation",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Handled => "handled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Outcome::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// 回访 satisfaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意
    Unsatisfied,
}

impl Satisfaction {
    pub const ALL: [Satisfaction; 3] =
        [Satisfaction::Satisfied, Satisfaction::BasicallySatisfied, Satisfaction::Unsatisfied];
    pub fn as_str(self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "satisfied",
            Satisfaction::BasicallySatisfied => "basically_satisfied",
            Satisfaction::Unsatisfied => "unsatisfied",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Satisfaction::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a dispatcher or mediator asks to do with a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CaseAction {
    /// 受理
    Accept,
    /// Refuse with a reason.
    Reject { reason: String },
    /// 签收: take the case exclusively, with a lease. Claiming a case that is
    /// not yet accepted accepts it first.
    Claim,
    /// Give a claimed case back to the queue.
    Release,
    /// Start working a claimed case.
    Start,
    /// Record the outcome.
    Resolve { outcome: Outcome, note: Option<String> },
    /// 核查
    Verify,
    /// 结案
    Close,
    /// 回访 with the party's satisfaction.
    Callback { satisfaction: Satisfaction },
}

impl CaseAction {
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Accept => "accept",
            CaseAction::Reject { .. } => "reject",
            CaseAction::Claim => "claim",
            CaseAction::Release => "release",
            CaseAction::Start => "start",
            CaseAction::Resolve { .. } => "resolve",
            CaseAction::Verify => "verify",
            CaseAction::Close => "close",
            CaseAction::Callback { .. } => "callback",
        }
    }
}

/// What happened to a case; each is one lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseEventKind {
    Created,
    Accepted,
    Rejected,
    Claimed,
    Released,
    Started,
    Resolved,
    Verified,
    Closed,
    CallbackRecorded,
}

impl CaseEventKind {
    pub const ALL: [CaseEventKind; 10] = [
        CaseEventKind::Created,
        CaseEventKind::Accepted,
        CaseEventKind::Rejected,
        CaseEventKind::Claimed,
        CaseEventKind::Released,
        CaseEventKind::Started,
        CaseEventKind::Resolved,
        CaseEventKind::Verified,
        CaseEventKind::Closed,
        CaseEventKind::CallbackRecorded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CaseEventKind::Created => "created",
            CaseEventKind::Accepted => "accepted",
            CaseEventKind::Rejected => "rejected",
            CaseEventKind::Claimed => "claimed",
            CaseEventKind::Released => "released",
            CaseEventKind::Started => "started",
            CaseEventKind::Resolved => "resolved",
            CaseEventKind::Verified => "verified",
            CaseEventKind::Closed => "closed",
            CaseEventKind::CallbackRecorded => "callback_recorded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        CaseEventKind::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One lifecycle event produced by a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub kind: CaseEventKind,
    /// The case's status right after this event.
    pub status: CaseStatus,
    /// The case's version right after this event.
    pub version: i64,
}

/// A refused transition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {action} a case that is {state}")]
    IllegalTransition { state: &'static str, action: &'static str },
    #[error("the case is claimed by {holder} until {until}")]
    ClaimedByAnother { holder: String, until: DateTime<Utc> },
    #[error("{0}")]
    MissingReason(&'static str),
    #[error("a callback was already recorded")]
    CallbackAlreadyRecorded,
}

/// A case: one or more reports in one channel queue of one centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: Uuid,
    pub report_id: Uuid,
    /// The centre whose queue holds the case (street centre code, or a county
    /// code for triage).
    pub centre: String,
    pub channel: Channel,
    pub priority: Priority,
    pub category: String,
    pub urgency: Urgency,
    pub hierarchy: Hierarchy,
    pub status: CaseStatus,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub satisfaction: Option<Satisfaction>,
    pub petition: Option<PetitionInfo>,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub version: i64,
}

impl Case {
    /// Applies `action` by `actor` at `now`, changing the case and returning
    /// the lifecycle events it produced, in order, each with the status and
    /// version after it. Nothing changes on error.
    pub fn apply(
        &mut self,
        action: &CaseAction,
        actor: &Actor,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Step>, TransitionError> {
        use CaseStatus as S;
        let illegal = || TransitionError::IllegalTransition { state: self.status.as_str(), action: action.name() };
        let holder_ok = |c: &Case| match (&c.claimed_by, c.lease_until) {
            (Some(h), Some(until)) if h != &actor.id && until > now => {
                Err(TransitionError::ClaimedByAnother { holder: h.clone(), until })
            }
            _ => Ok(()),
        };
        let mut next = self.clone();
        let events = match action {
            CaseAction::Accept => match self.status {
                S::Created => {
                    next.status = S::Accepted;
                    vec![CaseEventKind::Accepted]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Reject { reason } => match self.status {
                S::Created | S::Accepted => {
                    if reason.trim().is_empty() {
                        return Err(TransitionError::MissingReason("a rejection needs a reason"));
                    }
                    next.status = S::Rejected;
                    vec![CaseEventKind::Rejected]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Claim => {
                let mut ev = Vec::new();
                match self.status {
                    S::Created => ev.push(CaseEventKind::Accepted),
                    S::Accepted => {}
                    // A lapsed lease can be taken over.
                    S::Claimed | S::InProgress => holder_ok(self)?,
                    _ => return Err(illegal()),
                }
                if matches!(self.status, S::Claimed | S::InProgress) && self.claimed_by.as_deref() == Some(&actor.id) {
                    // Renewing one's own lease.
                } else if matches!(self.status, S::InProgress) {
                    next.status = S::InProgress;
                } else {
                    next.status = S::Claimed;
                }
                next.claimed_by = Some(actor.id.clone());
                next.lease_until = Some(now + lease);
                ev.push(CaseEventKind::Claimed);
                ev
            }
            CaseAction::Release => match self.status {
                S::Claimed | S::InProgress => {
                    holder_ok(self)?;
                    next.status = S::Accepted;
                    next.claimed_by = None;
                    next.lease_until = None;
                    vec![CaseEventKind::Released]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Start => match self.status {
                S::Claimed => {
                    holder_ok(self)?;
                    next.status = S::InProgress;
                    vec![CaseEventKind::Started]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Resolve { outcome, .. } => match self.status {
                S::Claimed | S::InProgress => {
                    holder_ok(self)?;
                    next.status = S::Resolved;
                    next.outcome = Some(*outcome);
                    next.lease_until = None;
                    vec![CaseEventKind::Resolved]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Verify => match self.status {
                S::Resolved => {
                    next.status = S::Verified;
                    vec![CaseEventKind::Verified]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Close => match self.status {
                S::Resolved | S::Verified => {
                    next.status = S::Closed;
                    vec![CaseEventKind::Closed]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Callback { satisfaction } => match self.status {
                S::Closed => {
                    if self.satisfaction.is_some() {
                        return Err(TransitionError::CallbackAlreadyRecorded);
                    }
                    next.satisfaction = Some(*satisfaction);
                    vec![CaseEventKind::CallbackRecorded]
                }
                _ => return Err(illegal()),
            },
        };
        let base = self.version;
        let steps = events
            .iter()
            .enumerate()
            .map(|(i, kind)| Step {
                kind: *kind,
                // Claiming an unaccepted case passes through "accepted".
                status: if *kind == CaseEventKind::Accepted { CaseStatus::Accepted } else { next.status },
                version: base + i as i64 + 1,
            })
            .collect::<Vec<_>>();
        next.version = base + steps.len() as i64;
        *self = next;
        Ok(steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn case() -> Case {
        let now = Utc::now();
        Case {
            id: Uuid::nil(),
            report_id: Uuid::nil(),
            centre: "371002001".into(),
            channel: Channel::PeopleMediation,
            priority: 3,
            category: "dispute.neighbourhood".into(),
            urgency: Urgency::Normal,
            hierarchy: Hierarchy::from_grid_code("371002001001001").unwrap(),
            status: CaseStatus::Created,
            claimed_by: None,
            lease_until: None,
            outcome: None,
            satisfaction: None,
            petition: None,
            created_at: now,
            due_at: now + Duration::days(7),
            version: 0,
        }
    }

    fn actor(id: &str) -> Actor {
        Actor { id: id.into(), role: Role::Dispatcher, scope: "371002001".into() }
    }

    #[test]
    fn happy_path_records_every_step() {
        let mut c = case();
        let now = Utc::now();
        let a = actor("d1");
        let lease = Duration::minutes(30);
        let kinds = |steps: Vec<Step>| steps.into_iter().map(|s| s.kind).collect::<Vec<_>>();
        let steps = c.apply(&CaseAction::Claim, &a, now, lease).unwrap();
        assert_eq!(steps[0], Step { kind: CaseEventKind::Accepted, status: CaseStatus::Accepted, version: 1 });
        assert_eq!(steps[1], Step { kind: CaseEventKind::Claimed, status: CaseStatus::Claimed, version: 2 });
        assert_eq!(c.status, CaseStatus::Claimed);
        let resolve = CaseAction::Resolve { outcome: Outcome::MediatedAgreement, note: None };
        assert_eq!(kinds(c.apply(&resolve, &a, now, lease).unwrap()), vec![CaseEventKind::Resolved]);
        assert_eq!(kinds(c.apply(&CaseAction::Close, &a, now, lease).unwrap()), vec![CaseEventKind::Closed]);
        let cb = CaseAction::Callback { satisfaction: Satisfaction::Satisfied };
        assert_eq!(kinds(c.apply(&cb, &a, now, lease).unwrap()), vec![CaseEventKind::CallbackRecorded]);
        assert_eq!(c.apply(&cb, &a, now, lease), Err(TransitionError::CallbackAlreadyRecorded));
        assert_eq!(c.version, 5);
    }

    #[test]
    fn refusals_name_state_and_action() {
        let mut c = case();
        let now = Utc::now();
        let lease = Duration::minutes(30);
        let err = c.apply(&CaseAction::Close, &actor("d1"), now, lease).unwrap_err();
        assert_eq!(err.to_string(), "cannot close a case that is created");
        assert_eq!(c.version, 0, "a refused action changes nothing");
        c.apply(&CaseAction::Claim, &actor("d1"), now, lease).unwrap();
        let err = c.apply(&CaseAction::Claim, &actor("d2"), now, lease).unwrap_err();
        assert!(matches!(err, TransitionError::ClaimedByAnother { .. }));
        // After the lease lapses another dispatcher may take over.
        let later = now + Duration::minutes(31);
        c.apply(&CaseAction::Claim, &actor("d2"), later, lease).unwrap();
        assert_eq!(c.claimed_by.as_deref(), Some("d2"));
        let err = c.apply(&CaseAction::Reject { reason: " ".into() }, &actor("d2"), later, lease).unwrap_err();
        assert!(matches!(err, TransitionError::IllegalTransition { .. }));
    }
}
