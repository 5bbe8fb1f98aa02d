//! Petitions (信访): keyed hashes instead of personal data, and the
//! first-time / repeat classification.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::case::CaseStatus;
pub use crate::petition_info::{PetitionClass, PetitionInfo};
use crate::report::Party;

/// Classifies a new petition received at `centre`, given the centres and
/// statuses of the same petitioner's earlier cases on the same matter:
/// first-time without any; escalated (越级) when one is still being handled
/// by a centre below `centre`; repeat otherwise.
pub fn classify(centre: &str, earlier: &[(String, CaseStatus)]) -> PetitionClass {
    if earlier.is_empty() {
        return PetitionClass::FirstTime;
    }
    let handled_below = earlier
        .iter()
        .any(|(below, status)| status.is_open() && below.as_str() != centre && crate::codes::covers(centre, below));
    if handled_below {
        PetitionClass::Escalated
    } else {
        PetitionClass::Repeat
    }
}

/// Computes petitioner and matter keys with a secret, so the same person and
/// matter always give the same keys and the keys reveal neither.
#[derive(Clone)]
pub struct Keyer {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Keyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyer(..)")
    }
}

fn normalise(s: &str) -> String {
    s.chars().filter(|c| c.is_alphanumeric()).flat_map(|c| c.to_uppercase()).collect()
}

impl Keyer {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Keyer { secret: secret.into() }
    }

    fn mac(&self, domain: &str, value: &str) -> String {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The petitioner key: from the ID number if given, else the phone, else
    /// the name. `None` without any party.
    pub fn petitioner_key(&self, parties: &[Party]) -> Option<String> {
        let p = parties.first()?;
        let identity = match (&p.id_number, &p.phone) {
            (Some(id), _) if !normalise(id).is_empty() => format!("id:{}", normalise(id)),
            (_, Some(phone)) if !normalise(phone).is_empty() => {
                format!("phone:{}", normalise(phone))
            }
            _ => format!("name:{}", normalise(&p.name)),
        };
        Some(self.mac("petitioner", &identity))
    }

    /// The matter key: the normalised matter text. It does not depend on
    /// where the petition was raised, so the same matter raised at a higher
    /// level has the same key.
    pub fn matter_key(&self, matter: &str) -> String {
        self.mac("matter", &normalise(matter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_earlier_cases_and_levels() {
        let running = CaseStatus::Accepted;
        assert_eq!(classify("371002001", &[]), PetitionClass::FirstTime);
        // The same centre again, or the earlier case closed: repeat.
        assert_eq!(classify("371002001", &[("371002001".into(), running)]), PetitionClass::Repeat);
        assert_eq!(classify("371002", &[("371002001".into(), CaseStatus::Closed)]), PetitionClass::Repeat);
        // The county while its street still handles it: escalated.
        assert_eq!(classify("371002", &[("371002001".into(), running)]), PetitionClass::Escalated);
        assert_eq!(classify("371000", &[("371002".into(), CaseStatus::Suspended)]), PetitionClass::Escalated);
        // Another county is not above this street.
        assert_eq!(classify("371003", &[("371002001".into(), running)]), PetitionClass::Repeat);
    }

    #[test]
    fn keys_are_stable_normalised_and_secret_dependent() {
        let k = Keyer::new(b"s1".to_vec());
        let p = |id: &str| vec![Party { name: "张三".into(), phone: None, id_number: Some(id.into()) }];
        assert_eq!(k.petitioner_key(&p("37100219800101123x")), k.petitioner_key(&p(" 37100219800101123X ")));
        assert_ne!(k.petitioner_key(&p("371002198001011230")), k.petitioner_key(&p("371002198001011231")));
        assert_ne!(Keyer::new(b"s2".to_vec()).petitioner_key(&p("1")), k.petitioner_key(&p("1")));
        assert_eq!(k.matter_key("拆迁 补偿"), k.matter_key("拆迁补偿。"));
        assert!(k.petitioner_key(&[]).is_none());
        let key = k.petitioner_key(&p("371002198001011230")).unwrap();
        assert!(!key.contains("371002198001011230"));
    }
}
