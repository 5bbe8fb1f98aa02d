//! Who may do what: roles and scopes. Tokens (JWT) carry these; checking a
//! signature is the platform's job, deciding what a verified caller may see
//! is the domain's.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::codes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 网格员: reports incidents; scope is their grid (or community).
    GridWorker,
    /// 综治中心调度员: works the queues of the centre in their scope.
    Dispatcher,
    /// 调解员: works cases of one centre.
    Mediator,
    /// Reads KPIs of the jurisdiction in their scope.
    Analyst,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::Dispatcher => "dispatcher",
            Role::Mediator => "mediator",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "grid_worker" => Role::GridWorker,
            "dispatcher" => Role::Dispatcher,
            "mediator" => Role::Mediator,
            "analyst" => Role::Analyst,
            "admin" => Role::Admin,
            other => {
                return Err(format!(
                    "unknown role {other:?}; expected grid_worker, dispatcher, mediator, analyst or admin"
                ))
            }
        })
    }
}

/// How far from their own grid a grid worker may place a report
/// (`intake.report_area`): the unit at this level above their grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportArea {
    /// The township/street (乡镇/街道) above the grid: the default.
    #[default]
    Street,
    County,
    City,
}

impl ReportArea {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportArea::Street => "street",
            ReportArea::County => "county",
            ReportArea::City => "city",
        }
    }

    /// The code of the unit at this level above `code` (itself when it is
    /// that level or coarser); `None` when `code` is no administrative code.
    pub fn above(self, code: &str) -> Option<String> {
        let level = codes::level_of(code).ok()?;
        let wanted = match self {
            ReportArea::Street => codes::Level::Street,
            ReportArea::County => codes::Level::County,
            ReportArea::City => codes::Level::City,
        };
        // Levels order from the province (coarsest) down to the grid.
        if level <= wanted {
            return Some(code.to_owned());
        }
        Some(match self {
            ReportArea::Street => code[..9].to_owned(),
            ReportArea::County => code[..6].to_owned(),
            ReportArea::City => format!("{}00", &code[..4]),
        })
    }
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable user id (the token's `sub`).
    pub id: String,
    pub role: Role,
    /// Administrative code the caller acts in ("" = everywhere, admin only).
    pub scope: String,
    /// A mediator's channel (`people_mediation`, …): they see and act only
    /// in that queue. `None` for every other role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl Actor {
    /// A caller without a channel (every role but mediator).
    pub fn new(id: impl Into<String>, role: Role, scope: impl Into<String>) -> Self {
        Actor { id: id.into(), role, scope: scope.into(), channel: None }
    }

    /// Whether this caller may see and act on a case in `channel`: a
    /// mediator only in their own channel (or a case that channel assists
    /// in, see `in_channels`), everyone else in every channel.
    pub fn covers_channel<'a>(&self, mut channels: impl Iterator<Item = &'a str>) -> bool {
        match self.role {
            Role::Mediator => self.channel.as_deref().is_some_and(|mine| channels.any(|c| c == mine)),
            _ => true,
        }
    }

    /// Whether this caller may see and act on things located at `code`.
    pub fn covers(&self, code: &str) -> bool {
        self.role == Role::Admin || (!self.scope.is_empty() && codes::covers(&self.scope, code))
    }

    /// Where this caller may place the reports they submit themselves: a
    /// grid worker within `area` of their scope (the street above their
    /// grid by default; their scope itself when it is coarser); `Some("")`,
    /// nowhere, for a grid worker without a valid scope. `None`: no area
    /// rule (admins report anywhere; other roles do not submit reports, and
    /// an Open311 key's area is checked by Open311 itself).
    pub fn report_area(&self, area: ReportArea) -> Option<String> {
        match self.role {
            Role::GridWorker => Some(area.above(&self.scope).unwrap_or_default()),
            _ => None,
        }
    }

    /// Whether this caller works case queues (dispatchers, mediators, admin).
    pub fn works_queues(&self) -> bool {
        matches!(self.role, Role::Dispatcher | Role::Mediator | Role::Admin)
    }

    /// Whether this caller may see a case queued at `centre` whose channels
    /// are `channels` (the lead, then any assisting): a dispatcher or admin
    /// whose scope covers the centre, a mediator of one of those channels
    /// under such a scope; grid workers and analysts see no case. The one
    /// rule for cases and for what they name (their reports' and tasks'
    /// media, ADR 0024); out of view answers 404, never 403.
    pub fn may_see_case<'a>(&self, centre: &str, channels: impl Iterator<Item = &'a str>) -> bool {
        self.works_queues() && self.covers(centre) && self.covers_channel(channels)
    }

    /// Whether this caller administers users bound to `code`: an admin whose
    /// scope covers it (an admin without scope administers everyone; only
    /// such an admin administers users without scope).
    pub fn administers(&self, code: &str) -> bool {
        self.role == Role::Admin && (self.scope.is_empty() || (!code.is_empty() && codes::covers(&self.scope, code)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_checks() {
        let d = Actor { id: "d".into(), role: Role::Dispatcher, scope: "371002001".into(), channel: None };
        assert!(d.covers("371002001"));
        assert!(d.covers("371002001002003"));
        assert!(!d.covers("371002002"));
        let county = Actor { id: "c".into(), role: Role::Dispatcher, scope: "371002".into(), channel: None };
        assert!(county.covers("371002001"));
        let admin = Actor { id: "a".into(), role: Role::Admin, scope: String::new(), channel: None };
        assert!(admin.covers("350000"));
        let nobody = Actor { id: "n".into(), role: Role::Analyst, scope: String::new(), channel: None };
        assert!(!nobody.covers("371002"));
        assert_eq!("dispatcher".parse::<Role>(), Ok(Role::Dispatcher));
        assert!("boss".parse::<Role>().is_err());
    }

    #[test]
    fn who_sees_a_case() {
        let street = "371002001";
        let d = Actor::new("d", Role::Dispatcher, street);
        assert!(d.may_see_case(street, ["people_mediation"].into_iter()));
        let elsewhere = Actor::new("e", Role::Dispatcher, "371082001");
        assert!(!elsewhere.may_see_case(street, ["people_mediation"].into_iter()));
        let mut m = Actor::new("m", Role::Mediator, street);
        assert!(!m.may_see_case(street, ["people_mediation"].into_iter()), "a mediator without a channel");
        m.channel = Some("legal_aid".into());
        assert!(!m.may_see_case(street, ["people_mediation"].into_iter()));
        assert!(m.may_see_case(street, ["people_mediation", "legal_aid"].into_iter()), "assisting");
        let worker = Actor::new("w", Role::GridWorker, street);
        assert!(!worker.may_see_case(street, ["people_mediation"].into_iter()), "grid workers see no queue");
        let analyst = Actor::new("a", Role::Analyst, "371000");
        assert!(!analyst.may_see_case(street, ["people_mediation"].into_iter()));
        assert!(Actor::new("root", Role::Admin, "").may_see_case(street, ["people_mediation"].into_iter()));
    }

    #[test]
    fn who_administers_users() {
        let root = Actor::new("root", Role::Admin, "");
        assert!(root.administers("371002001") && root.administers(""));
        let county = Actor::new("c", Role::Admin, "371002");
        assert!(county.administers("371002001001001"));
        assert!(!county.administers("371082001"));
        assert!(!county.administers(""), "a scoped admin cannot touch a user without scope");
        assert!(!Actor::new("d", Role::Dispatcher, "371002").administers("371002001"));
    }

    #[test]
    fn report_areas() {
        let w = |scope: &str| Actor::new("w", Role::GridWorker, scope);
        let grid = "371002001001001";
        assert_eq!(w(grid).report_area(ReportArea::Street).as_deref(), Some("371002001"));
        assert_eq!(w(grid).report_area(ReportArea::County).as_deref(), Some("371002"));
        assert_eq!(w(grid).report_area(ReportArea::City).as_deref(), Some("371000"));
        // A scope coarser than the level is the area itself.
        assert_eq!(w("371002").report_area(ReportArea::Street).as_deref(), Some("371002"));
        assert_eq!(w("371002001001").report_area(ReportArea::County).as_deref(), Some("371002"));
        // No valid scope: an area that covers nothing.
        assert_eq!(w("").report_area(ReportArea::Street).as_deref(), Some(""));
        assert!(!codes::covers("", grid));
        assert_eq!(Actor::new("a", Role::Admin, "").report_area(ReportArea::Street), None);
    }
}
