//! The category taxonomy and the routing rules: data, not code.

use serde::{Deserialize, Serialize};

use crate::calendar::{Span, Unit};
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
    /// Close-out deadline from creation, in hours, overriding the table's
    /// SLA clocks for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla_hours: Option<u32>,
}

/// The close-out clock of cases of one channel and priority. Empty fields
/// match anything; the first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// E.g. `"4 hours"`, `"3 working days"`, `"15 days"` (or
    /// `{"amount": 3, "unit": "working_days"}`).
    #[serde(serialize_with = "span_text", deserialize_with = "span_any")]
    pub within: Span,
}

fn span_text<S: serde::Serializer>(span: &Span, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(span)
}

fn span_any<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SpanIn {
        Text(String),
        Struct(Span),
    }
    match SpanIn::deserialize(d)? {
        SpanIn::Text(t) => t.parse().map_err(serde::de::Error::custom),
        SpanIn::Struct(s) => Ok(s),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTable {
    pub version: u32,
    pub rules: Vec<RoutingRule>,
    /// SLA clocks per channel and priority, in table order.
    #[serde(default)]
    pub sla: Vec<SlaClock>,
}

/// Where a report goes, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub channel: Channel,
    pub priority: Priority,
    /// The close-out clock.
    pub sla: Span,
    pub rule_id: String,
    pub rules_version: u32,
    /// What decided the clock: `rule <id>` or `sla <index>`.
    pub sla_source: String,
}

fn category_matches(rule: &str, category: &str) -> bool {
    rule.is_empty()
        || rule == category
        || (category.starts_with(rule) && category.as_bytes().get(rule.len()) == Some(&b'.'))
}

/// One rule weighed by [`RoutingTable::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCheck {
    pub rule_id: String,
    pub matched: bool,
    /// Why it did not match (empty when it did).
    pub why_not: Vec<String>,
}

/// Why a table is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("the routing table has no catch-all rule (empty category, urgency and jurisdiction) at its end")]
    NoCatchAll,
    #[error("rule {0:?}: jurisdiction {1:?} is not an administrative code")]
    BadJurisdiction(String, String),
    #[error("rule {0:?} has no sla_hours and the table's sla clocks have no catch-all (no channel, no priority) at their end")]
    NoClock(String),
    #[error("rule {0:?} is listed twice")]
    DuplicateRule(String),
    #[error("rule {0:?}: priority must be 1 (most urgent) to 9")]
    BadPriority(String),
}

impl RoutingTable {
    /// A table must end in a catch-all so that every report gets a queue.
    pub fn validate(&self) -> Result<(), RoutingError> {
        let catch_all_clock = self.sla.last().is_some_and(|c| c.channel.is_none() && c.priority.is_none());
        let mut seen = std::collections::HashSet::new();
        for r in &self.rules {
            if !seen.insert(r.id.as_str()) {
                return Err(RoutingError::DuplicateRule(r.id.clone()));
            }
            if !(1..=9).contains(&r.priority) {
                return Err(RoutingError::BadPriority(r.id.clone()));
            }
            if !r.jurisdiction.is_empty() && codes::level_of(&r.jurisdiction).is_err() {
                return Err(RoutingError::BadJurisdiction(r.id.clone(), r.jurisdiction.clone()));
            }
            if r.sla_hours.is_none() && !catch_all_clock {
                return Err(RoutingError::NoClock(r.id.clone()));
            }
        }
        match self.rules.last() {
            Some(r) if r.category.is_empty() && r.urgency.is_none() && r.jurisdiction.is_empty() => Ok(()),
            _ => Err(RoutingError::NoCatchAll),
        }
    }

    /// Why each rule up to the first match did or did not match: the
    /// answer to "where would this report go, and why".
    pub fn explain(&self, category: &str, urgency: Urgency, at: &Hierarchy) -> Vec<RuleCheck> {
        let place = at.finest();
        let mut out = Vec::new();
        for r in &self.rules {
            let mut why = Vec::new();
            if !category_matches(&r.category, category) {
                why.push(format!("category {category} is not under {}", r.category));
            }
            if let Some(u) = r.urgency {
                if u != urgency {
                    why.push(format!("urgency is {}, the rule wants {}", urgency.as_str(), u.as_str()));
                }
            }
            if !r.jurisdiction.is_empty() && !codes::covers(&r.jurisdiction, place) {
                why.push(format!("{place} is outside {}", r.jurisdiction));
            }
            let matched = why.is_empty();
            out.push(RuleCheck { rule_id: r.id.clone(), matched, why_not: why });
            if matched {
                break;
            }
        }
        out
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
        let channel =
            if at.grid.is_empty() && rule.channel != Channel::Emergency { Channel::Triage } else { rule.channel };
        let (sla, sla_source) = match rule.sla_hours {
            Some(h) => (Span { amount: h, unit: Unit::Hours }, format!("rule {}", rule.id)),
            None => {
                let (i, c) = self.sla.iter().enumerate().find(|(_, c)| {
                    c.channel.is_none_or(|ch| ch == channel) && c.priority.is_none_or(|p| p == rule.priority)
                })?;
                (c.within, format!("sla {i}"))
            }
        };
        Some(Route {
            channel,
            priority: rule.priority,
            sla,
            rule_id: rule.id.clone(),
            rules_version: self.version,
            sla_source,
        })
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
            sla_hours: None,
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)] // test
    fn first_match_wins_and_prefixes_respect_dots() {
        let clocks = vec![
            SlaClock { channel: Some(Channel::Emergency), priority: None, within: "4 hours".parse().unwrap() },
            SlaClock { channel: None, priority: Some(3), within: "5 working days".parse().unwrap() },
            SlaClock { channel: None, priority: None, within: "10 days".parse().unwrap() },
        ];
        let t = RoutingTable {
            version: 1,
            sla: clocks.clone(),
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
        let why = t.explain("dispute.labour", Urgency::Normal, &hc);
        assert_eq!(why.len(), 3);
        assert_eq!(why[0].why_not, vec!["urgency is normal, the rule wants emergency".to_owned()]);
        assert_eq!(why[1].why_not, vec!["371002001001001 is outside 371082".to_owned()]);
        assert!(why[2].matched && why[2].rule_id == "disputes");
        let bad = RoutingTable {
            version: 1,
            rules: vec![rule("x", "dispute", None, "", Channel::Petition)],
            sla: clocks.clone(),
        };
        assert_eq!(bad.validate(), Err(RoutingError::NoCatchAll));
        // Clocks by channel and priority.
        let em = t.route("dispute.labour", Urgency::Emergency, &hc).unwrap();
        assert_eq!((em.sla.to_string(), em.sla_source.as_str()), ("4 hours".to_owned(), "sla 0"));
        let pm = t.route("dispute.labour", Urgency::Normal, &hc).unwrap();
        assert_eq!(pm.sla.to_string(), "5 working days");
        let mut over = t.clone();
        over.rules[2].sla_hours = Some(48);
        let r = over.route("dispute.x", Urgency::Normal, &hc).unwrap();
        assert_eq!((r.sla.to_string(), r.sla_source.as_str()), ("48 hours".to_owned(), "rule disputes"));
        let no_clock = RoutingTable { version: 1, rules: t.rules.clone(), sla: clocks[..2].to_vec() };
        assert_eq!(no_clock.validate(), Err(RoutingError::NoClock("emerg".into())));
        let mut dup = t.clone();
        dup.rules[1].id = "emerg".into();
        assert_eq!(dup.validate(), Err(RoutingError::DuplicateRule("emerg".into())));
    }
}
