//! How urgent a matter is, as its reporter said, and whether it takes the
//! emergency lane (应急, ADR 0014). Reports carry it to their cases and
//! routing rules match on it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    #[default]
    Normal,
    Urgent,
    Emergency,
}

/// Whether a report travels the emergency lane (应急): marked an emergency,
/// or of an emergency category.
pub fn is_emergency(urgency: Urgency, category: &str) -> bool {
    urgency == Urgency::Emergency || category == "emergency" || category.starts_with("emergency.")
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Urgent => "urgent",
            Urgency::Emergency => "emergency",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "normal" => Some(Urgency::Normal),
            "urgent" => Some(Urgency::Urgent),
            "emergency" => Some(Urgency::Emergency),
            _ => None,
        }
    }
}
