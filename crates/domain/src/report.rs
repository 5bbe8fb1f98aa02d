//! Reports (事件上报) as grid workers send them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::text::{check_text, ValidationError, MAX_NOTE_CHARS};
pub use crate::urgency::{is_emergency, Urgency};

/// The coordinate reference system a phone reported in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// GPS, WGS-84 (the default).
    #[default]
    Wgs84,
    /// GCJ-02, what Chinese map SDKs report; converted to WGS-84 before lookup.
    Gcj02,
}

impl Crs {
    pub fn as_str(self) -> &'static str {
        match self {
            Crs::Wgs84 => "wgs84",
            Crs::Gcj02 => "gcj02",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
    /// Horizontal accuracy in metres, as the phone estimates it.
    pub accuracy_m: Option<f64>,
    pub crs: Crs,
}

/// A person involved. Personal information under PIPL: never on topics,
/// never in logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub name: String,
    pub phone: Option<String>,
    pub id_number: Option<String>,
}

/// A report as accepted from a phone, before assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewReport {
    /// Client-generated id; the idempotency key.
    pub id: Uuid,
    pub reporter: String,
    pub occurred_at: DateTime<Utc>,
    pub location: Location,
    pub address: Option<String>,
    pub category: String,
    pub description: String,
    pub urgency: Urgency,
    pub parties: Vec<Party>,
    /// For petitions: what the matter is about (used, hashed, to tell
    /// first-time from repeat petitions).
    pub matter: Option<String>,
    /// The centre (street, county or city code) where the report was
    /// received in person, when not the grid's own: a petitioner who goes
    /// to the county centre raises the matter at the county level.
    pub received_by: Option<String>,
    /// Photos and videos, by media id (the SHA-256 of the file), uploaded
    /// before or after the report.
    pub media: Vec<String>,
    /// 就地化解: the grid worker already resolved the matter on the spot.
    pub on_spot: Option<OnSpot>,
}

/// A matter resolved on the spot: the outcome (a case outcome code) and what
/// was done; its photos are the report's media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnSpot {
    pub outcome: String,
    pub note: Option<String>,
}

/// Media ids as intake names them: the SHA-256 (lowercase hex) of the file.
pub fn is_media_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where a report is on its way through the pipeline, as its reporter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Accepted by intake, not yet assigned to a grid.
    Submitted,
    /// Assigned to a grid (or a county triage queue).
    Assigned,
    /// A case exists in a centre's queue.
    Queued,
    Accepted,
    Rejected,
    InProgress,
    Resolved,
    Closed,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Submitted => "submitted",
            ReportStatus::Assigned => "assigned",
            ReportStatus::Queued => "queued",
            ReportStatus::Accepted => "accepted",
            ReportStatus::Rejected => "rejected",
            ReportStatus::InProgress => "in_progress",
            ReportStatus::Resolved => "resolved",
            ReportStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "submitted" => ReportStatus::Submitted,
            "assigned" => ReportStatus::Assigned,
            "queued" => ReportStatus::Queued,
            "accepted" => ReportStatus::Accepted,
            "rejected" => ReportStatus::Rejected,
            "in_progress" => ReportStatus::InProgress,
            "resolved" => ReportStatus::Resolved,
            "closed" => ReportStatus::Closed,
            _ => return None,
        })
    }
}

pub const MAX_DESCRIPTION_CHARS: usize = 4000;
pub const MAX_PARTIES: usize = 50;
pub const MAX_ADDRESS_CHARS: usize = 500;
pub const MAX_MATTER_CHARS: usize = 4000;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_PHONE_CHARS: usize = 40;
pub const MAX_CODE_CHARS: usize = 64;
pub const MAX_MEDIA: usize = 20;

impl Location {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Err(ValidationError::new(
                "location.lat",
                "invalid_coordinates",
                format!("latitude must be a number between -90 and 90, got {}", self.lat),
                format!("纬度必须是 -90 到 90 之间的数字，收到 {}", self.lat),
            ));
        }
        if !self.lon.is_finite() || !(-180.0..=180.0).contains(&self.lon) {
            return Err(ValidationError::new(
                "location.lon",
                "invalid_coordinates",
                format!("longitude must be a number between -180 and 180, got {}", self.lon),
                format!("经度必须是 -180 到 180 之间的数字，收到 {}", self.lon),
            ));
        }
        if let Some(acc) = self.accuracy_m {
            if !acc.is_finite() || acc < 0.0 {
                return Err(ValidationError::new(
                    "location.accuracy_m",
                    "invalid_accuracy",
                    "accuracy must be a non-negative number of metres",
                    "定位精度必须是非负的米数",
                ));
            }
        }
        Ok(())
    }
}

impl NewReport {
    fn validate_media_and_on_spot(&self, petition: bool) -> Result<(), ValidationError> {
        if let Some(o) = &self.on_spot {
            if let Some(note) = &o.note {
                check_text("resolved_on_spot.note", note, MAX_NOTE_CHARS)?;
            }
            if crate::Outcome::parse(&o.outcome).is_none() {
                return Err(ValidationError::new(
                    "resolved_on_spot.outcome",
                    "invalid_outcome",
                    format!("unknown outcome {:?}", o.outcome),
                    format!("未知的办理结果 {:?}", o.outcome),
                ));
            }
            if petition {
                return Err(ValidationError::new(
                    "resolved_on_spot",
                    "petition_not_on_spot",
                    "petitions follow the petition procedure and cannot be closed on the spot",
                    "信访事项须按信访程序办理，不能就地办结",
                ));
            }
        }
        if self.media.len() > MAX_MEDIA {
            return Err(ValidationError::new(
                "media",
                "too_many",
                format!("at most {MAX_MEDIA} media per report"),
                format!("每条报告最多 {MAX_MEDIA} 个附件"),
            ));
        }
        if let Some((i, bad)) = self.media.iter().enumerate().find(|(_, m)| !is_media_id(m)) {
            return Err(ValidationError::new(
                &format!("media[{i}]"),
                "invalid_media_id",
                format!("{bad:?} is not a media id (the id POST /v1/media returned)"),
                format!("{bad:?} 不是有效的附件编号"),
            ));
        }
        Ok(())
    }

    /// Checks the report against the taxonomy: `category` answers, for a
    /// category code, `None` if there is no such category, else whether it is
    /// a petition category.
    pub fn validate(&self, category: impl Fn(&str) -> Option<bool>) -> Result<(), ValidationError> {
        self.location.validate()?;
        check_text("category", &self.category, MAX_CODE_CHARS)?;
        check_text("description", &self.description, MAX_DESCRIPTION_CHARS)?;
        if let Some(a) = &self.address {
            check_text("address", a, MAX_ADDRESS_CHARS)?;
        }
        if let Some(m) = &self.matter {
            check_text("matter", m, MAX_MATTER_CHARS)?;
        }
        if let Some(r) = &self.received_by {
            check_text("received_by", r, MAX_CODE_CHARS)?;
        }
        if self.category.trim().is_empty() {
            return Err(ValidationError::new("category", "missing_field", "category is required", "事件类别不能为空"));
        }
        let Some(petition) = category(&self.category) else {
            return Err(ValidationError::new(
                "category",
                "unknown_category",
                format!("unknown category {:?}", self.category),
                format!("未知的事件类别 {:?}", self.category),
            ));
        };
        if self.description.trim().is_empty() {
            return Err(ValidationError::new(
                "description",
                "missing_field",
                "description is required",
                "事件描述不能为空",
            ));
        }
        if let Some(code) = &self.received_by {
            let level = crate::codes::level_of(code);
            if !matches!(
                level,
                Ok(crate::codes::Level::Street | crate::codes::Level::County | crate::codes::Level::City)
            ) {
                return Err(ValidationError::new(
                    "received_by",
                    "invalid_received_by",
                    format!("received_by must be a street, county or city code, got {code:?}"),
                    format!("受理单位必须是乡镇（街道）、县级或市级代码，收到 {code:?}"),
                ));
            }
        }
        if self.parties.len() > MAX_PARTIES {
            return Err(ValidationError::new(
                "parties",
                "too_many",
                format!("at most {MAX_PARTIES} parties"),
                format!("当事人最多 {MAX_PARTIES} 个"),
            ));
        }
        self.validate_media_and_on_spot(petition)?;
        for (i, p) in self.parties.iter().enumerate() {
            check_text(&format!("parties[{i}].name"), &p.name, MAX_NAME_CHARS)?;
            if let Some(phone) = &p.phone {
                check_text(&format!("parties[{i}].phone"), phone, MAX_PHONE_CHARS)?;
            }
            if let Some(id) = &p.id_number {
                check_text(&format!("parties[{i}].id_number"), id, MAX_PHONE_CHARS)?;
            }
            if p.name.trim().is_empty() {
                return Err(ValidationError::new(
                    &format!("parties[{i}].name"),
                    "missing_field",
                    "a party needs a name",
                    "当事人姓名不能为空",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> NewReport {
        NewReport {
            id: Uuid::nil(),
            reporter: "w".into(),
            occurred_at: Utc::now(),
            location: Location { lat: 37.5, lon: 122.1, accuracy_m: Some(8.0), crs: Crs::Wgs84 },
            address: None,
            category: "dispute.neighbourhood".into(),
            description: "噪音".into(),
            urgency: Urgency::Normal,
            parties: vec![],
            matter: None,
            received_by: None,
            media: Vec::new(),
            on_spot: None,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ok = |_: &str| Some(false);
        assert!(report().validate(ok).is_ok());
        let mut r = report();
        r.location.lat = f64::NAN;
        assert_eq!(r.validate(ok).unwrap_err().field, "location.lat");
        let mut r = report();
        r.location.lon = 181.0;
        assert_eq!(r.validate(ok).unwrap_err().code, "invalid_coordinates");
        let r = report();
        assert_eq!(r.validate(|_| None).unwrap_err().code, "unknown_category");
        let mut spot = report();
        spot.on_spot = Some(OnSpot { outcome: "mediated_agreement".into(), note: Some("当场和解".into()) });
        spot.media = vec!["ab".repeat(32)];
        assert!(spot.validate(ok).is_ok());
        assert_eq!(spot.validate(|_| Some(true)).unwrap_err().code, "petition_not_on_spot");
        spot.media.push("photo.jpg".into());
        let e = spot.validate(ok).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), ("invalid_media_id", "media[1]"));
        let mut nul = report();
        nul.description = "a\u{0}b".into();
        let e = nul.validate(ok).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), ("invalid_characters", "description"));
        let mut lines = report();
        lines.description = "第一行\n第二行\t完".into();
        assert!(lines.validate(ok).is_ok());
        let mut long = report();
        long.address = Some("路".repeat(MAX_ADDRESS_CHARS + 1));
        let e = long.validate(ok).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), ("too_long", "address"));
        let mut r = report();
        r.description = "  ".into();
        assert_eq!(r.validate(ok).unwrap_err().field, "description");
        let mut r = report();
        r.parties.push(Party { name: "".into(), phone: None, id_number: None });
        assert_eq!(r.validate(ok).unwrap_err().field, "parties[0].name");
    }
}
