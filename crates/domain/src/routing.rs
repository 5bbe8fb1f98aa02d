//! The category taxonomy and the routing rules: data, not code.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::case::{Channel, Priority};
use crate::codes::{self, Hierarchy};
use crate::report::Urgency;

/// One category of the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Dotted code, e.g. `dispute.neighbourhood`.
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// Whether reports of this category are petitions (信访).
    #[serde(default)]
    pub petition: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    pub version: u32,
    pub categories: Vec<Category>,
}

impl Taxonomy {
    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }
}

/// One routing rule. Empty/absent fields match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub id: String,
    /// A category code or a dotted prefix of codes (`dispute` matches
    /// `dispute.neighbourhood`); empty matches every category.
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// An administrative code the report must lie under; empty = anywhere.
    #[serde(default)]
    pub jurisdiction: String,
    pub channel: Channel,
    pub priority: Priority,
    /// Close-out deadline from creation, in hours.
    pub sla_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTable {
    pub version: u32,
    pub rules: Vec<RoutingRule>,
}

/// Where a report goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub channel: Channel,
    pub priority: Priority,
    pub sla_hours: u32,
    pub rule_id: String,
    pub rules_version: u32,
}

impl Route {
    pub fn sla(&self) -> Duration {
        Duration::hours(i64::from(self.sla_hours))
    }
}

fn category_matches(rule: &str, category: &str) -> bool {
    rule.is_empty()
        || rule == category
        || (category.starts_with(rule) && category.as_bytes().get(rule.len()) == Some(&b'.'))
}

/// Why a table is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("the routing table has no catch-all rule (empty category, urgency and jurisdiction) at its end")]
    NoCatchAll,
    #[error("rule {0:?}: jurisdiction {1:?} is not an administrative code")]
    BadJurisdiction(String, String),
}

impl RoutingTable {
    /// A table must end in a catch-all so that every report gets a queue.
    pub fn validate(&self) -> Result<(), RoutingError> {
        for r in &self.rules {
            if !r.jurisdiction.is_empty() && codes::level_of(&r.jurisdiction).is_err() {
                return Err(RoutingError::BadJurisdiction(r.id.clone(), r.jurisdiction.clone()));
            }
        }
        match self.rules.last() {
            Some(r) if r.category.is_empty() && r.urgency.is_none() && r.jurisdiction.is_empty() => Ok(()),
            _ => Err(RoutingError::NoCatchAll),
        }
    }

    /// The first rule that matches, in table order. Reports outside every
    /// grid go to the county's triage queue whatever the rules say.
    pub fn route(&self, category: &str, urgency: Urgency, at: &Hierarchy) -> Option<Route> {
        let place = at.finest();
        let rule = self.rules.iter().find(|r| {
            category_matches(&r.category, category)
                && r.urgency.is_none_or(|u| u == urgency)
                && (r.jurisdiction.is_empty() || codes::covers(&r.jurisdiction, place))
        })?;
        let mut route = Route {
            channel: rule.channel,
            priority: rule.priority,
            sla_hours: rule.sla_hours,
            rule_id: rule.id.clone(),
            rules_version: self.version,
        };
        if at.grid.is_empty() && rule.channel != Channel::Emergency {
            route.channel = Channel::Triage;
        }
        Some(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, cat: &str, urg: Option<Urgency>, jur: &str, ch: Channel) -> RoutingRule {
        RoutingRule {
            id: id.into(),
            category: cat.into(),
            urgency: urg,
            jurisdiction: jur.into(),
            channel: ch,
            priority: 3,
            sla_hours: 72,
        }
    }

    #[test]
    fn first_match_wins_and_prefixes_respect_dots() {
        let t = RoutingTable {
            version: 1,
            rules: vec![
                rule("emerg", "", Some(Urgency::Emergency), "", Channel::Emergency),
                rule("rc-labour", "dispute.labour", None, "371082", Channel::LegalAid),
                rule("disputes", "dispute", None, "", Channel::PeopleMediation),
                rule("petitions", "petition", None, "", Channel::Petition),
                rule("rest", "", None, "", Channel::DepartmentDispatch),
            ],
        };
        t.validate().unwrap();
        let hc = Hierarchy::from_grid_code("371002001001001").unwrap();
        let rc = Hierarchy::from_grid_code("371082001001001").unwrap();
        assert_eq!(t.route("dispute.labour", Urgency::Normal, &rc).unwrap().channel, Channel::LegalAid);
        assert_eq!(t.route("dispute.labour", Urgency::Normal, &hc).unwrap().channel, Channel::PeopleMediation);
        assert_eq!(t.route("dispute.labour", Urgency::Emergency, &hc).unwrap().rule_id, "emerg");
        assert_eq!(t.route("disputes.x", Urgency::Normal, &hc).unwrap().rule_id, "rest");
        assert_eq!(t.route("petition.land", Urgency::Normal, &hc).unwrap().channel, Channel::Petition);
        let outside = Hierarchy::county_only("371002").unwrap();
        assert_eq!(t.route("dispute.labour", Urgency::Normal, &outside).unwrap().channel, Channel::Triage);
        assert_eq!(t.route("hazard.fire", Urgency::Emergency, &outside).unwrap().channel, Channel::Emergency);
        let bad = RoutingTable { version: 1, rules: vec![rule("x", "dispute", None, "", Channel::Petition)] };
        assert_eq!(bad.validate(), Err(RoutingError::NoCatchAll));
    }
}
