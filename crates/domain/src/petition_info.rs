//! What a case records of its petition (信访): keys instead of personal
//! data, and its class. How the keys are made and the class decided is in
//! `petition`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PetitionClass {
    /// 初次: no earlier petition by the same petitioner on the same matter.
    FirstTime,
    /// 重复: the same petitioner raised the same matter before.
    Repeat,
    /// 越级: the same petitioner raises the same matter at a higher level
    /// while a lower level is still handling it.
    Escalated,
}

impl PetitionClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PetitionClass::FirstTime => "first_time",
            PetitionClass::Repeat => "repeat",
            PetitionClass::Escalated => "escalated",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "first_time" => Some(PetitionClass::FirstTime),
            "repeat" => Some(PetitionClass::Repeat),
            "escalated" => Some(PetitionClass::Escalated),
            _ => None,
        }
    }
}

/// What a case knows of its petition: keys, never raw identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PetitionInfo {
    pub petitioner_key: String,
    pub matter_key: String,
    pub class: PetitionClass,
}
