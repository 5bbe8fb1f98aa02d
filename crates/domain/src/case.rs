//! Cases in the one-stop mediation queues and their lifecycle.
//!
//! Every transition yields one or more [`CaseEventKind`]s; the caller records
//! each as a lifecycle event. Illegal transitions are refused with a
//! [`TransitionError`] that names the state and the action.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Actor, Role};
use crate::codes::Hierarchy;
use crate::petition_info::PetitionInfo;
use crate::text::{check_text, ValidationError, MAX_NOTE_CHARS};
use crate::urgency::Urgency;

/// Longest reason of an action (a rejection's, a transfer's, …), in
/// characters; a resolve note is at most [`MAX_NOTE_CHARS`].
pub const MAX_REASON_CHARS: usize = 2000;

/// A reason given with an action, checked like a report's free text: no
/// control characters but tab and line breaks, at most
/// [`MAX_REASON_CHARS`] characters.
pub fn check_reason(reason: &str) -> Result<(), ValidationError> {
    check_text("reason", reason, MAX_REASON_CHARS)
}

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
    /// In a queue, not yet accepted (受理) there: new, transferred or escalated.
    Created,
    /// 受理: accepted, waiting to be claimed.
    Accepted,
    /// Refused with a reason (terminal).
    Rejected,
    /// 签收: held by one worker under a lease.
    Claimed,
    /// Being worked by its holder.
    InProgress,
    /// Paused (中止); the SLA clock stops until it resumes.
    Suspended,
    /// Outcome recorded.
    Resolved,
    /// 核查: the outcome was checked.
    Verified,
    /// 结案
    Closed,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 9] = [
        CaseStatus::Created,
        CaseStatus::Accepted,
        CaseStatus::Rejected,
        CaseStatus::Claimed,
        CaseStatus::InProgress,
        CaseStatus::Suspended,
        CaseStatus::Resolved,
        CaseStatus::Verified,
        CaseStatus::Closed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Created => "created",
            CaseStatus::Accepted => "accepted",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Claimed => "claimed",
            CaseStatus::InProgress => "in_progress",
            CaseStatus::Suspended => "suspended",
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

    /// The statuses in which a case's clocks run: open, not suspended and
    /// not yet resolved.
    pub const RUNNING: [CaseStatus; 4] =
        [CaseStatus::Created, CaseStatus::Accepted, CaseStatus::Claimed, CaseStatus::InProgress];

    /// Whether the case's clocks run (see [`CaseStatus::RUNNING`]).
    pub fn clock_runs(self) -> bool {
        CaseStatus::RUNNING.contains(&self)
    }

    /// The overdue rule, the one every view, filter and sort follows: a case
    /// is overdue at `now` when its clocks run (see [`CaseStatus::RUNNING`])
    /// and its close-out deadline has come (`due_at <= now`), or, still
    /// unaccepted ([`CaseStatus::Created`]), its acceptance deadline has
    /// come (`accept_due_at <= now`, a petition's 15 days). A query that
    /// selects overdue cases states these same conditions.
    pub fn overdue(self, due_at: DateTime<Utc>, accept_due_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        self.clock_runs() && (due_at <= now || (self == CaseStatus::Created && accept_due_at.is_some_and(|d| d <= now)))
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
    /// 未接通: nobody answered the callback. Not an evaluation; another
    /// callback may be made.
    Unanswered,
}

impl Satisfaction {
    pub const ALL: [Satisfaction; 4] = [
        Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied,
        Satisfaction::Unsatisfied,
        Satisfaction::Unanswered,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "satisfied",
            Satisfaction::BasicallySatisfied => "basically_satisfied",
            Satisfaction::Unsatisfied => "unsatisfied",
            Satisfaction::Unanswered => "unanswered",
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
    /// Move the case to another channel and/or centre, with a reason. It
    /// arrives there unaccepted and unclaimed.
    Transfer { channel: Option<Channel>, centre: Option<String>, reason: String },
    /// 联合调处: the case's channel leads; `channels` assist. An empty list
    /// ends joint handling.
    Joint { channels: Vec<Channel>, reason: String },
    /// 上行: hand the case up to the county centre.
    Escalate { reason: String },
    /// Pause the case (the SLA clock stops).
    Suspend { reason: String },
    /// Continue a suspended case where it was; its clocks are pushed back by
    /// the time it was suspended.
    Resume,
    /// Record the outcome.
    Resolve { outcome: Outcome, note: Option<String> },
    /// 核查
    Verify,
    /// 结案
    Close,
    /// Take a resolved or closed case up again; it goes back to its queue.
    Reopen { reason: String },
    /// 回访 with the party's satisfaction (or that nobody answered).
    Callback { satisfaction: Satisfaction },
    /// 复查申请: the petitioner asks for a review of the answer. The case's
    /// state does not change (the review is the reviewing body's matter);
    /// it is recorded because it counts against first-contact resolution.
    RequestReview { reason: String },
    /// An approved extension of a petition's close-out deadline (延期),
    /// computed by the caller from the statutory rules; allowed once.
    Extend { due_at: DateTime<Utc>, reason: String },
}

impl CaseAction {
    pub fn name(&self) -> &'static str {
        match self {
            CaseAction::Accept => "accept",
            CaseAction::Reject { .. } => "reject",
            CaseAction::Claim => "claim",
            CaseAction::Release => "release",
            CaseAction::Start => "start",
            CaseAction::Transfer { .. } => "transfer",
            CaseAction::Joint { .. } => "joint",
            CaseAction::Escalate { .. } => "escalate",
            CaseAction::Suspend { .. } => "suspend",
            CaseAction::Resume => "resume",
            CaseAction::Resolve { .. } => "resolve",
            CaseAction::Verify => "verify",
            CaseAction::Close => "close",
            CaseAction::Reopen { .. } => "reopen",
            CaseAction::Callback { .. } => "callback",
            CaseAction::RequestReview { .. } => "request_review",
            CaseAction::Extend { .. } => "extend",
        }
    }

    /// Checks the action's free text (its reason, or a resolve's note) with
    /// the report's text rules ([`check_text`]).
    pub fn check_text(&self) -> Result<(), ValidationError> {
        match self {
            CaseAction::Resolve { note: Some(note), .. } => check_text("note", note, MAX_NOTE_CHARS),
            CaseAction::Resolve { note: None, .. } => Ok(()),
            other => other.reason().map_or(Ok(()), check_reason),
        }
    }

    /// The reason given with the action, if it takes one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            CaseAction::Reject { reason }
            | CaseAction::Transfer { reason, .. }
            | CaseAction::Joint { reason, .. }
            | CaseAction::Escalate { reason }
            | CaseAction::Suspend { reason }
            | CaseAction::Reopen { reason }
            | CaseAction::RequestReview { reason }
            | CaseAction::Extend { reason, .. } => Some(reason),
            CaseAction::Resolve { note, .. } => note.as_deref(),
            _ => None,
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
    Transferred,
    JointHandling,
    Escalated,
    Suspended,
    Resumed,
    Resolved,
    Verified,
    Closed,
    Reopened,
    CallbackRecorded,
    /// 复查申请 recorded.
    ReviewRequested,
    Extended,
    /// Another report of the same incident was linked to the case.
    ReportLinked,
    /// A wrongly linked report was split off into a case of its own.
    ReportSplit,
    /// 督办: the case is near its deadline.
    SupervisionNearDue,
    /// 督办: the case is past its deadline.
    SupervisionOverdue,
}

impl CaseEventKind {
    pub const ALL: [CaseEventKind; 22] = [
        CaseEventKind::Created,
        CaseEventKind::Accepted,
        CaseEventKind::Rejected,
        CaseEventKind::Claimed,
        CaseEventKind::Released,
        CaseEventKind::Started,
        CaseEventKind::Transferred,
        CaseEventKind::JointHandling,
        CaseEventKind::Escalated,
        CaseEventKind::Suspended,
        CaseEventKind::Resumed,
        CaseEventKind::Resolved,
        CaseEventKind::Verified,
        CaseEventKind::Closed,
        CaseEventKind::Reopened,
        CaseEventKind::CallbackRecorded,
        CaseEventKind::ReviewRequested,
        CaseEventKind::Extended,
        CaseEventKind::ReportLinked,
        CaseEventKind::ReportSplit,
        CaseEventKind::SupervisionNearDue,
        CaseEventKind::SupervisionOverdue,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CaseEventKind::Created => "created",
            CaseEventKind::Accepted => "accepted",
            CaseEventKind::Rejected => "rejected",
            CaseEventKind::Claimed => "claimed",
            CaseEventKind::Released => "released",
            CaseEventKind::Started => "started",
            CaseEventKind::Transferred => "transferred",
            CaseEventKind::JointHandling => "joint_handling",
            CaseEventKind::Escalated => "escalated",
            CaseEventKind::Suspended => "suspended",
            CaseEventKind::Resumed => "resumed",
            CaseEventKind::Resolved => "resolved",
            CaseEventKind::Verified => "verified",
            CaseEventKind::Closed => "closed",
            CaseEventKind::Reopened => "reopened",
            CaseEventKind::CallbackRecorded => "callback_recorded",
            CaseEventKind::ReviewRequested => "review_requested",
            CaseEventKind::Extended => "extended",
            CaseEventKind::ReportLinked => "report_linked",
            CaseEventKind::ReportSplit => "report_split",
            CaseEventKind::SupervisionNearDue => "supervision_near_due",
            CaseEventKind::SupervisionOverdue => "supervision_overdue",
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
    /// The action's arguments do not make sense for this case.
    #[error("{0}")]
    Invalid(String),
    /// Its free text breaks the rules every free text follows.
    #[error(transparent)]
    Text(#[from] ValidationError),
}

/// A case: one or more reports in one channel queue of one centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: Uuid,
    pub report_id: Uuid,
    /// The centre whose queue holds the case (street centre code, or a county
    /// code for triage and escalated cases).
    pub centre: String,
    /// The queue holding the case; the lead channel in joint handling.
    pub channel: Channel,
    /// Channels assisting in joint handling (联合调处), never the lead.
    pub joint: Vec<Channel>,
    pub priority: Priority,
    pub category: String,
    pub urgency: Urgency,
    pub hierarchy: Hierarchy,
    pub status: CaseStatus,
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The status a suspended case returns to, and since when.
    pub suspended_from: Option<CaseStatus>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub satisfaction: Option<Satisfaction>,
    pub petition: Option<PetitionInfo>,
    pub created_at: DateTime<Utc>,
    /// Close-out deadline (SLA, or the petition's statutory 60 days).
    pub due_at: DateTime<Utc>,
    /// Acceptance deadline (a petition's 15 days), if any.
    pub accept_due_at: Option<DateTime<Utc>>,
    /// Whether the close-out deadline was extended (petitions, once).
    pub extended: bool,
    pub version: i64,
}

/// What a new case starts from; everything else starts blank.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub id: Uuid,
    pub report_id: Uuid,
    pub centre: String,
    pub channel: Channel,
    pub priority: Priority,
    pub category: String,
    pub urgency: Urgency,
    pub hierarchy: Hierarchy,
    pub petition: Option<PetitionInfo>,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub accept_due_at: Option<DateTime<Utc>>,
}

impl Case {
    /// A case just created in its queue (version 1).
    pub fn new(n: NewCase) -> Case {
        Case {
            id: n.id,
            report_id: n.report_id,
            centre: n.centre,
            channel: n.channel,
            joint: Vec::new(),
            priority: n.priority,
            category: n.category,
            urgency: n.urgency,
            hierarchy: n.hierarchy,
            status: CaseStatus::Created,
            claimed_by: None,
            lease_until: None,
            suspended_from: None,
            suspended_at: None,
            outcome: None,
            satisfaction: None,
            petition: n.petition,
            created_at: n.created_at,
            due_at: n.due_at,
            accept_due_at: n.accept_due_at,
            extended: false,
            version: 1,
        }
    }

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
        action.check_text()?;
        let illegal = || TransitionError::IllegalTransition { state: self.status.as_str(), action: action.name() };
        // A live lease held by someone else stops the action.
        let holder_ok = |c: &Case| match (&c.claimed_by, c.lease_until) {
            (Some(h), Some(until)) if h != &actor.id && until > now => {
                Err(TransitionError::ClaimedByAnother { holder: h.clone(), until })
            }
            _ => Ok(()),
        };
        // Dispatchers (and admins) may move or pause a case someone else
        // holds; a mediator may not.
        let holder_or_dispatcher = |c: &Case| {
            if matches!(actor.role, Role::Dispatcher | Role::Admin) {
                Ok(())
            } else {
                holder_ok(c)
            }
        };
        let need_reason = |reason: &str, what: &'static str| {
            if reason.trim().is_empty() {
                Err(TransitionError::MissingReason(what))
            } else {
                Ok(())
            }
        };
        let mut next = self.clone();
        let unclaim = |n: &mut Case| {
            n.claimed_by = None;
            n.lease_until = None;
        };
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
                    need_reason(reason, "a rejection needs a reason")?;
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
                if matches!(self.status, S::Created | S::Accepted) {
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
                    unclaim(&mut next);
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
            CaseAction::Transfer { channel, centre, reason } => match self.status {
                S::Created | S::Accepted | S::Claimed | S::InProgress => {
                    holder_or_dispatcher(self)?;
                    need_reason(reason, "a transfer needs a reason")?;
                    let to_channel = channel.unwrap_or(self.channel);
                    let to_centre = centre.clone().unwrap_or_else(|| self.centre.clone());
                    if to_channel == self.channel && to_centre == self.centre {
                        return Err(TransitionError::Invalid(
                            "a transfer must name another channel or another centre".into(),
                        ));
                    }
                    if to_channel == Channel::Triage {
                        return Err(TransitionError::Invalid("cases cannot be transferred into triage".into()));
                    }
                    next.channel = to_channel;
                    next.centre = to_centre;
                    next.joint.retain(|c| *c != to_channel);
                    next.status = S::Created;
                    unclaim(&mut next);
                    vec![CaseEventKind::Transferred]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Joint { channels, reason } => match self.status {
                S::Accepted | S::Claimed | S::InProgress => {
                    holder_or_dispatcher(self)?;
                    need_reason(reason, "joint handling needs a reason")?;
                    let mut set = channels.clone();
                    set.sort();
                    set.dedup();
                    if set.len() != channels.len() {
                        return Err(TransitionError::Invalid("a channel is listed twice".into()));
                    }
                    if set.contains(&self.channel) {
                        return Err(TransitionError::Invalid(format!(
                            "{} leads the case; list only the assisting channels",
                            self.channel.as_str()
                        )));
                    }
                    if set.contains(&Channel::Triage) {
                        return Err(TransitionError::Invalid("triage cannot take part in joint handling".into()));
                    }
                    next.joint = set;
                    vec![CaseEventKind::JointHandling]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Escalate { reason } => match self.status {
                S::Created | S::Accepted | S::Claimed | S::InProgress => {
                    holder_or_dispatcher(self)?;
                    need_reason(reason, "an escalation needs a reason")?;
                    if self.hierarchy.county.is_empty() || self.centre == self.hierarchy.county {
                        return Err(TransitionError::Invalid(
                            "the case is already with the county centre; transfer it instead".into(),
                        ));
                    }
                    next.centre = self.hierarchy.county.clone();
                    next.status = S::Created;
                    next.joint.clear();
                    unclaim(&mut next);
                    vec![CaseEventKind::Escalated]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Suspend { reason } => match self.status {
                S::Accepted | S::Claimed | S::InProgress => {
                    holder_or_dispatcher(self)?;
                    need_reason(reason, "a suspension needs a reason")?;
                    next.suspended_from = Some(self.status);
                    next.suspended_at = Some(now);
                    next.status = S::Suspended;
                    vec![CaseEventKind::Suspended]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Resume => match (self.status, self.suspended_from, self.suspended_at) {
                (S::Suspended, Some(from), Some(at)) => {
                    holder_or_dispatcher(self)?;
                    let paused = (now - at).max(Duration::zero());
                    next.due_at = self.due_at + paused;
                    next.accept_due_at = self.accept_due_at.map(|d| d + paused);
                    next.status = from;
                    if matches!(from, S::Claimed | S::InProgress) {
                        // The holder keeps the case with a fresh lease.
                        next.lease_until = Some(now + lease);
                    }
                    next.suspended_from = None;
                    next.suspended_at = None;
                    vec![CaseEventKind::Resumed]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Resolve { outcome, .. } => match self.status {
                S::Claimed | S::InProgress => {
                    holder_ok(self)?;
                    next.status = S::Resolved;
                    next.outcome = Some(*outcome);
                    // The resolver is on the timeline; the queue is free again.
                    unclaim(&mut next);
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
                S::Resolved | S::Verified if self.outcome.is_some() => {
                    next.status = S::Closed;
                    vec![CaseEventKind::Closed]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Reopen { reason } => match self.status {
                S::Resolved | S::Verified | S::Closed => {
                    need_reason(reason, "reopening needs a reason")?;
                    next.status = S::Accepted;
                    next.outcome = None;
                    next.satisfaction = None;
                    unclaim(&mut next);
                    vec![CaseEventKind::Reopened]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Callback { satisfaction } => match self.status {
                S::Closed => {
                    if self.satisfaction.is_some_and(|s| s != Satisfaction::Unanswered) {
                        return Err(TransitionError::CallbackAlreadyRecorded);
                    }
                    next.satisfaction = Some(*satisfaction);
                    vec![CaseEventKind::CallbackRecorded]
                }
                _ => return Err(illegal()),
            },
            CaseAction::RequestReview { reason } => match self.status {
                S::Resolved | S::Verified | S::Closed => {
                    need_reason(reason, "a review request needs the petitioner's grounds")?;
                    if self.petition.is_none() {
                        return Err(TransitionError::Invalid("only petitions can have a review requested".into()));
                    }
                    vec![CaseEventKind::ReviewRequested]
                }
                _ => return Err(illegal()),
            },
            CaseAction::Extend { due_at, reason } => {
                if !self.status.is_open() || self.status == S::Resolved || self.status == S::Verified {
                    return Err(illegal());
                }
                need_reason(reason, "an extension needs the approval's reason")?;
                if self.channel != Channel::Petition || self.petition.is_none() {
                    return Err(TransitionError::Invalid(
                        "only petitions have an extendable close-out deadline".into(),
                    ));
                }
                if self.extended {
                    return Err(TransitionError::Invalid("the close-out deadline was already extended once".into()));
                }
                if *due_at <= self.due_at {
                    return Err(TransitionError::Invalid("an extension must move the deadline later".into()));
                }
                next.due_at = *due_at;
                next.extended = true;
                vec![CaseEventKind::Extended]
            }
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

    /// Records an event that changes neither status nor queue (a linked or
    /// split report, a supervision notice): the version moves on by one.
    pub fn note(&mut self, kind: CaseEventKind) -> Step {
        self.version += 1;
        Step { kind, status: self.status, version: self.version }
    }

    /// The queue holding the case.
    pub fn queue(&self) -> (&str, Channel) {
        (&self.centre, self.channel)
    }

    /// Whether the case is overdue at `now` (the rule is
    /// [`CaseStatus::overdue`]).
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.overdue(self.due_at, self.accept_due_at, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn case() -> Case {
        let now = Utc::now();
        let mut c = Case::new(NewCase {
            id: Uuid::nil(),
            report_id: Uuid::nil(),
            centre: "371002001".into(),
            channel: Channel::PeopleMediation,
            priority: 3,
            category: "dispute.neighbourhood".into(),
            urgency: Urgency::Normal,
            hierarchy: Hierarchy::from_grid_code("371002001001001").unwrap(),
            petition: None,
            created_at: now,
            due_at: now + Duration::days(7),
            accept_due_at: None,
        });
        c.version = 0;
        c
    }

    fn actor(id: &str) -> Actor {
        Actor { id: id.into(), role: Role::Dispatcher, scope: "371002001".into(), channel: None }
    }

    #[test]
    fn overdue_is_one_rule() {
        let now = Utc::now();
        let (past, future) = (now - Duration::hours(1), now + Duration::hours(1));
        // (status, due_at, accept_due_at) -> overdue
        let table = [
            (CaseStatus::Created, future, None, false),
            (CaseStatus::Created, past, None, true),
            (CaseStatus::Created, now, None, true),
            (CaseStatus::Created, future, Some(past), true),
            (CaseStatus::Created, future, Some(future), false),
            (CaseStatus::Accepted, future, Some(past), false),
            (CaseStatus::Accepted, past, None, true),
            (CaseStatus::Claimed, past, None, true),
            (CaseStatus::InProgress, past, Some(past), true),
            (CaseStatus::Suspended, past, None, false),
            (CaseStatus::Resolved, past, None, false),
            (CaseStatus::Verified, past, None, false),
            (CaseStatus::Closed, past, Some(past), false),
            (CaseStatus::Rejected, past, None, false),
        ];
        for (status, due_at, accept_due_at, want) in table {
            let mut c = case();
            c.status = status;
            c.due_at = due_at;
            c.accept_due_at = accept_due_at;
            assert_eq!(c.is_overdue(now), want, "{status:?} due {due_at} accept {accept_due_at:?}");
        }
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
        // Nobody answered: the callback may be tried again, once answered it is final.
        let none = CaseAction::Callback { satisfaction: Satisfaction::Unanswered };
        assert_eq!(kinds(c.apply(&none, &a, now, lease).unwrap()), vec![CaseEventKind::CallbackRecorded]);
        let cb = CaseAction::Callback { satisfaction: Satisfaction::Satisfied };
        assert_eq!(kinds(c.apply(&cb, &a, now, lease).unwrap()), vec![CaseEventKind::CallbackRecorded]);
        assert_eq!(c.apply(&cb, &a, now, lease), Err(TransitionError::CallbackAlreadyRecorded));
        assert_eq!(c.apply(&none, &a, now, lease), Err(TransitionError::CallbackAlreadyRecorded));
        assert_eq!(c.version, 6);
        // Only petitions have reviews requested.
        let review = CaseAction::RequestReview { reason: reason("对答复意见不服") };
        assert!(matches!(c.apply(&review, &a, now, lease), Err(TransitionError::Invalid(_))));
    }

    #[test]
    fn a_review_request_is_recorded_on_an_answered_petition_without_changing_it() {
        let now = Utc::now();
        let d = actor("d1");
        let mut c = case();
        c.petition = Some(PetitionInfo {
            petitioner_key: "p".into(),
            matter_key: "m".into(),
            class: crate::petition::PetitionClass::FirstTime,
        });
        let review = CaseAction::RequestReview { reason: reason("对答复意见不服") };
        assert_eq!(
            c.apply(&review, &d, now, LEASE).unwrap_err().to_string(),
            "cannot request_review a case that is created"
        );
        c.apply(&CaseAction::Claim, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Resolve { outcome: Outcome::MediatedAgreement, note: None }, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Close, &d, now, LEASE).unwrap();
        let before = c.clone();
        let steps = c.apply(&review, &d, now, LEASE).unwrap();
        assert_eq!(kinds(steps), vec![CaseEventKind::ReviewRequested]);
        assert_eq!((c.status, c.version), (CaseStatus::Closed, before.version + 1));
        assert_eq!(
            c.apply(&CaseAction::RequestReview { reason: " ".into() }, &d, now, LEASE),
            Err(TransitionError::MissingReason("a review request needs the petitioner's grounds"))
        );
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

    fn mediator(id: &str) -> Actor {
        Actor {
            id: id.into(),
            role: Role::Mediator,
            scope: "371002001".into(),
            channel: Some("people_mediation".into()),
        }
    }

    const LEASE: Duration = Duration::minutes(30);

    fn kinds(steps: Vec<Step>) -> Vec<CaseEventKind> {
        steps.into_iter().map(|s| s.kind).collect()
    }

    fn reason(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn free_text_follows_the_report_rules() {
        let now = Utc::now();
        let d = actor("d1");
        let mut c = case();
        let before = c.clone();
        let text = |r: Result<Vec<Step>, TransitionError>| match r {
            Err(TransitionError::Text(e)) => (e.code, e.field),
            other => panic!("{other:?}"),
        };
        let nul = CaseAction::Reject { reason: "不予受理\u{0}".into() };
        assert_eq!(text(c.apply(&nul, &d, now, LEASE)), ("invalid_characters", "reason".to_owned()));
        let long = CaseAction::Transfer { channel: Some(Channel::LegalAid), centre: None, reason: "理".repeat(2001) };
        assert_eq!(text(c.apply(&long, &d, now, LEASE)), ("too_long", "reason".to_owned()));
        let note = CaseAction::Resolve { outcome: Outcome::Handled, note: Some("记".repeat(MAX_NOTE_CHARS + 1)) };
        assert_eq!(text(c.apply(&note, &d, now, LEASE)), ("too_long", "note".to_owned()), "before the state is judged");
        assert_eq!(c, before, "nothing changed");
        let lines = CaseAction::Reject { reason: "第一行\n第二行\t完".into() };
        assert!(c.apply(&lines, &d, now, LEASE).is_ok());
    }

    #[test]
    fn each_transition_from_each_state() {
        use CaseEventKind as K;
        use CaseStatus as S;
        let now = Utc::now();
        let d = actor("d1");
        // (setup actions, action, expected events, expected status)
        let claim = CaseAction::Claim;
        let resolve = CaseAction::Resolve { outcome: Outcome::Handled, note: None };
        let cases: Vec<(Vec<CaseAction>, CaseAction, Vec<K>, S)> = vec![
            (vec![], CaseAction::Accept, vec![K::Accepted], S::Accepted),
            (vec![], CaseAction::Reject { reason: reason("not ours") }, vec![K::Rejected], S::Rejected),
            (
                vec![CaseAction::Accept],
                CaseAction::Reject { reason: reason("duplicate") },
                vec![K::Rejected],
                S::Rejected,
            ),
            (vec![CaseAction::Accept], claim.clone(), vec![K::Claimed], S::Claimed),
            (vec![claim.clone()], CaseAction::Release, vec![K::Released], S::Accepted),
            (vec![claim.clone()], CaseAction::Start, vec![K::Started], S::InProgress),
            (vec![claim.clone(), CaseAction::Start], CaseAction::Release, vec![K::Released], S::Accepted),
            (
                vec![claim.clone()],
                CaseAction::Transfer {
                    channel: Some(Channel::LegalAid),
                    centre: None,
                    reason: reason("needs a lawyer"),
                },
                vec![K::Transferred],
                S::Created,
            ),
            (
                vec![CaseAction::Accept],
                CaseAction::Joint {
                    channels: vec![Channel::LegalAid, Channel::Petition],
                    reason: reason("many parties"),
                },
                vec![K::JointHandling],
                S::Accepted,
            ),
            (
                vec![claim.clone()],
                CaseAction::Escalate { reason: reason("beyond the street") },
                vec![K::Escalated],
                S::Created,
            ),
            (
                vec![claim.clone(), CaseAction::Start],
                CaseAction::Suspend { reason: reason("party abroad") },
                vec![K::Suspended],
                S::Suspended,
            ),
            (
                vec![claim.clone(), CaseAction::Start, CaseAction::Suspend { reason: reason("party abroad") }],
                CaseAction::Resume,
                vec![K::Resumed],
                S::InProgress,
            ),
            (vec![claim.clone()], resolve.clone(), vec![K::Resolved], S::Resolved),
            (vec![claim.clone(), resolve.clone()], CaseAction::Verify, vec![K::Verified], S::Verified),
            (vec![claim.clone(), resolve.clone()], CaseAction::Close, vec![K::Closed], S::Closed),
            (vec![claim.clone(), resolve.clone(), CaseAction::Verify], CaseAction::Close, vec![K::Closed], S::Closed),
            (
                vec![claim.clone(), resolve.clone(), CaseAction::Close],
                CaseAction::Reopen { reason: reason("agreement not kept") },
                vec![K::Reopened],
                S::Accepted,
            ),
            (
                vec![claim.clone(), resolve.clone(), CaseAction::Close],
                CaseAction::Callback { satisfaction: Satisfaction::BasicallySatisfied },
                vec![K::CallbackRecorded],
                S::Closed,
            ),
        ];
        for (setup, action, want, status) in cases {
            let mut c = case();
            for a in &setup {
                c.apply(a, &d, now, LEASE).unwrap_or_else(|e| panic!("setup {a:?}: {e}"));
            }
            let before = c.version;
            let got = c.apply(&action, &d, now, LEASE).unwrap_or_else(|e| panic!("{action:?}: {e}"));
            assert_eq!(kinds(got), want, "{action:?}");
            assert_eq!(c.status, status, "{action:?}");
            assert_eq!(c.version, before + 1, "{action:?}");
        }
    }

    #[test]
    fn transfer_escalate_joint_move_the_case_between_queues() {
        let now = Utc::now();
        let d = actor("d1");
        let mut c = case();
        c.apply(&CaseAction::Claim, &d, now, LEASE).unwrap();
        let to = CaseAction::Transfer {
            channel: Some(Channel::AdministrativeMediation),
            centre: Some("371002002".into()),
            reason: reason("wage arrears belong to labour inspection"),
        };
        c.apply(&to, &d, now, LEASE).unwrap();
        assert_eq!(c.queue(), ("371002002", Channel::AdministrativeMediation));
        assert_eq!((c.status, c.claimed_by.as_deref()), (CaseStatus::Created, None), "arrives unclaimed");
        let same = CaseAction::Transfer { channel: None, centre: None, reason: reason("x") };
        assert!(matches!(c.apply(&same, &d, now, LEASE), Err(TransitionError::Invalid(_))));
        let no_reason = CaseAction::Transfer { channel: Some(Channel::LegalAid), centre: None, reason: reason("  ") };
        assert_eq!(
            c.apply(&no_reason, &d, now, LEASE),
            Err(TransitionError::MissingReason("a transfer needs a reason"))
        );

        c.apply(&CaseAction::Accept, &d, now, LEASE).unwrap();
        let lead_listed = CaseAction::Joint { channels: vec![Channel::AdministrativeMediation], reason: reason("x") };
        assert!(
            matches!(c.apply(&lead_listed, &d, now, LEASE), Err(TransitionError::Invalid(m)) if m.contains("leads"))
        );
        let twice = CaseAction::Joint { channels: vec![Channel::LegalAid, Channel::LegalAid], reason: reason("x") };
        assert!(matches!(c.apply(&twice, &d, now, LEASE), Err(TransitionError::Invalid(_))));
        let joint =
            CaseAction::Joint { channels: vec![Channel::PeopleMediation, Channel::LegalAid], reason: reason("x") };
        c.apply(&joint, &d, now, LEASE).unwrap();
        assert_eq!(c.joint, vec![Channel::PeopleMediation, Channel::LegalAid]);
        assert_eq!(c.channel, Channel::AdministrativeMediation, "one lead");

        c.apply(&CaseAction::Escalate { reason: reason("beyond the street") }, &d, now, LEASE).unwrap();
        assert_eq!(c.queue(), ("371002", Channel::AdministrativeMediation));
        assert!(c.joint.is_empty(), "the county centre decides joint handling afresh");
        let again = c.apply(&CaseAction::Escalate { reason: reason("more") }, &d, now, LEASE);
        assert!(matches!(again, Err(TransitionError::Invalid(m)) if m.contains("already with the county")));
    }

    #[test]
    fn suspension_pauses_the_clock() {
        let now = Utc::now();
        let d = actor("d1");
        let mut c = case();
        c.petition = Some(PetitionInfo {
            petitioner_key: "p".into(),
            matter_key: "m".into(),
            class: crate::petition::PetitionClass::FirstTime,
        });
        c.accept_due_at = Some(now + Duration::days(15));
        let due = c.due_at;
        c.apply(&CaseAction::Claim, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Suspend { reason: reason("waiting for an appraisal") }, &d, now, LEASE).unwrap();
        assert_eq!(
            c.apply(&CaseAction::Start, &d, now, LEASE).unwrap_err().to_string(),
            "cannot start a case that is suspended"
        );
        let later = now + Duration::days(3);
        c.apply(&CaseAction::Resume, &d, later, LEASE).unwrap();
        assert_eq!(c.status, CaseStatus::Claimed);
        assert_eq!(c.due_at, due + Duration::days(3));
        assert_eq!(c.accept_due_at, Some(now + Duration::days(18)));
        assert_eq!(c.lease_until, Some(later + LEASE), "the holder gets a fresh lease");
        assert_eq!(
            c.apply(&CaseAction::Resume, &d, later, LEASE).unwrap_err().to_string(),
            "cannot resume a case that is claimed"
        );
    }

    #[test]
    fn reopen_and_extend() {
        let now = Utc::now();
        let d = actor("d1");
        let mut c = case();
        let ext = CaseAction::Extend { due_at: c.due_at + Duration::days(30), reason: reason("approved by the head") };
        assert!(
            matches!(c.apply(&ext, &d, now, LEASE), Err(TransitionError::Invalid(m)) if m.contains("only petitions"))
        );
        c.channel = Channel::Petition;
        c.petition = Some(PetitionInfo {
            petitioner_key: "p".into(),
            matter_key: "m".into(),
            class: crate::petition::PetitionClass::FirstTime,
        });
        c.apply(&ext, &d, now, LEASE).unwrap();
        assert!(c.extended);
        let ext2 = CaseAction::Extend { due_at: c.due_at + Duration::days(1), reason: reason("again") };
        assert!(
            matches!(c.apply(&ext2, &d, now, LEASE), Err(TransitionError::Invalid(m)) if m.contains("already extended"))
        );

        c.apply(&CaseAction::Claim, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Resolve { outcome: Outcome::NotAgreed, note: None }, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Close, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Callback { satisfaction: Satisfaction::Unsatisfied }, &d, now, LEASE).unwrap();
        c.apply(&CaseAction::Reopen { reason: reason("unsatisfied at callback") }, &d, now, LEASE).unwrap();
        assert_eq!((c.status, c.outcome, c.satisfaction), (CaseStatus::Accepted, None, None));
        assert_eq!(
            c.apply(&CaseAction::Close, &d, now, LEASE).unwrap_err().to_string(),
            "cannot close a case that is accepted"
        );
    }

    #[test]
    fn a_mediator_cannot_move_a_case_another_holds_but_a_dispatcher_can() {
        let now = Utc::now();
        let mut c = case();
        c.apply(&CaseAction::Claim, &mediator("m1"), now, LEASE).unwrap();
        let suspend = CaseAction::Suspend { reason: reason("x") };
        assert!(matches!(
            c.apply(&suspend, &mediator("m2"), now, LEASE),
            Err(TransitionError::ClaimedByAnother { .. })
        ));
        assert!(
            matches!(
                c.apply(&CaseAction::Resolve { outcome: Outcome::Handled, note: None }, &actor("d1"), now, LEASE),
                Err(TransitionError::ClaimedByAnother { .. })
            ),
            "only the holder resolves"
        );
        c.apply(&suspend, &actor("d1"), now, LEASE).unwrap();
    }

    #[test]
    fn no_channel_name_is_part_of_another() {
        // Queue filters match a channel inside a comma-separated list by substring.
        for a in Channel::ALL {
            for b in Channel::ALL {
                assert!(a == b || !a.as_str().contains(b.as_str()), "{} contains {}", a.as_str(), b.as_str());
            }
            assert_eq!(Channel::parse(a.as_str()), Some(a));
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_action() -> impl Strategy<Value = CaseAction> {
            let channel = prop::sample::select(Channel::ALL.to_vec());
            let text = prop::sample::select(vec!["", "  ", "a reason"]).prop_map(str::to_owned);
            prop_oneof![
                Just(CaseAction::Accept),
                text.clone().prop_map(|reason| CaseAction::Reject { reason }),
                Just(CaseAction::Claim),
                Just(CaseAction::Release),
                Just(CaseAction::Start),
                (
                    prop::option::of(channel.clone()),
                    prop::option::of(prop::sample::select(vec!["371002001", "371002002", "371002"])),
                    text.clone()
                )
                    .prop_map(|(channel, centre, reason)| CaseAction::Transfer {
                        channel,
                        centre: centre.map(str::to_owned),
                        reason
                    }),
                (prop::collection::vec(channel, 0..3), text.clone())
                    .prop_map(|(channels, reason)| CaseAction::Joint { channels, reason }),
                text.clone().prop_map(|reason| CaseAction::Escalate { reason }),
                text.clone().prop_map(|reason| CaseAction::Suspend { reason }),
                Just(CaseAction::Resume),
                prop::sample::select(Outcome::ALL.to_vec())
                    .prop_map(|outcome| CaseAction::Resolve { outcome, note: None }),
                Just(CaseAction::Verify),
                Just(CaseAction::Close),
                text.clone().prop_map(|reason| CaseAction::Reopen { reason }),
                text.clone().prop_map(|reason| CaseAction::RequestReview { reason }),
                prop::sample::select(Satisfaction::ALL.to_vec())
                    .prop_map(|satisfaction| CaseAction::Callback { satisfaction }),
                (0i64..40, text).prop_map(|(days, reason)| CaseAction::Extend {
                    due_at: Utc::now() + Duration::days(days),
                    reason
                }),
            ]
        }

        fn any_actor() -> impl Strategy<Value = Actor> {
            prop_oneof![Just(actor("d1")), Just(actor("d2")), Just(mediator("m1")), Just(mediator("m2"))]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Random action sequences by random workers at random times:
            /// every accepted action is recorded as events whose versions
            /// count up by one and whose last status is the case's; a refused
            /// one changes nothing; the case is always in exactly one queue
            /// (one centre, one lead channel never listed among its assisting
            /// channels); no case is closed without an outcome; a claim is
            /// held exactly while the case is claimed or in progress (or
            /// suspended from there).
            #[test]
            fn invariants_hold(steps in prop::collection::vec((any_action(), any_actor(), 0i64..120), 1..60)) {
                let mut c = case();
                let mut now = Utc::now();
                let mut log: Vec<Step> = Vec::new();
                for (action, who, minutes) in steps {
                    now += Duration::minutes(minutes);
                    let before = c.clone();
                    match c.apply(&action, &who, now, LEASE) {
                        Ok(got) => {
                            prop_assert!(!got.is_empty());
                            for (i, s) in got.iter().enumerate() {
                                prop_assert_eq!(s.version, before.version + i as i64 + 1);
                            }
                            prop_assert_eq!(got.last().map(|s| s.status), Some(c.status));
                            prop_assert_eq!(c.version, before.version + got.len() as i64);
                            log.extend(got);
                        }
                        Err(_) => prop_assert_eq!(&c, &before, "a refused action changed the case"),
                    }
                    prop_assert!(!c.joint.contains(&c.channel), "lead listed as assisting: {:?}", c);
                    prop_assert!(!c.centre.is_empty());
                    if c.status == CaseStatus::Closed {
                        prop_assert!(c.outcome.is_some(), "closed without an outcome");
                    }
                    let held = matches!(c.status, CaseStatus::Claimed | CaseStatus::InProgress)
                        || (c.status == CaseStatus::Suspended
                            && matches!(c.suspended_from, Some(CaseStatus::Claimed | CaseStatus::InProgress)));
                    prop_assert_eq!(c.claimed_by.is_some(), held, "claim held in {:?}", c.status);
                    prop_assert_eq!(c.status == CaseStatus::Suspended, c.suspended_from.is_some());
                    if c.satisfaction.is_some() {
                        prop_assert_eq!(c.status, CaseStatus::Closed);
                    }
                }
                // Every transition recorded: the log alone replays the case's
                // version and status.
                prop_assert_eq!(log.len() as i64, c.version);
                prop_assert_eq!(log.last().map(|s| s.status).unwrap_or(CaseStatus::Created), c.status);
            }
        }
    }
}
