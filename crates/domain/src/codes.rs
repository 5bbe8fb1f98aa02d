//! Administrative codes: GB/T 2260 (province 2, city 4, county 6 digits),
//! township/street (9) and village/community (12) statistical codes, and
//! comprehensive grid codes (community code + 3-digit sequence = 15 digits).
//!
//! Codes are hierarchical by prefix, which is how scopes are checked: a
//! jurisdiction covers every code that starts with its *significant prefix*
//! (`370000` → `37`, `371000` → `3710`, `371002` → `371002`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A level of the grid-governance hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Province,
    City,
    County,
    Street,
    Community,
    Grid,
}

impl Level {
    pub const ALL: [Level; 6] =
        [Level::Grid, Level::Community, Level::Street, Level::County, Level::City, Level::Province];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Street => "street",
            Level::Community => "community",
            Level::Grid => "grid",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("code {0:?} must be 6, 9, 12 or 15 ASCII digits")]
    Malformed(String),
}

/// The level a code denotes, from its length and, for 6-digit codes, its
/// trailing zeros.
pub fn level_of(code: &str) -> Result<Level, CodeError> {
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Malformed(code.to_owned()));
    }
    match code.len() {
        6 if code.ends_with("0000") => Ok(Level::Province),
        6 if code.ends_with("00") => Ok(Level::City),
        6 => Ok(Level::County),
        9 => Ok(Level::Street),
        12 => Ok(Level::Community),
        15 => Ok(Level::Grid),
        _ => Err(CodeError::Malformed(code.to_owned())),
    }
}

/// The prefix every code under `code` starts with.
pub fn significant_prefix(code: &str) -> Result<&str, CodeError> {
    Ok(match level_of(code)? {
        Level::Province => &code[..2],
        Level::City => &code[..4],
        _ => code,
    })
}

/// Whether the jurisdiction `scope` covers `code` (itself or anything below).
pub fn covers(scope: &str, code: &str) -> bool {
    match significant_prefix(scope) {
        Ok(prefix) => code.starts_with(prefix),
        Err(_) => false,
    }
}

/// A comprehensive grid and every unit above it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hierarchy {
    pub grid: String,
    pub community: String,
    pub street: String,
    pub county: String,
    pub city: String,
    pub province: String,
}

impl Hierarchy {
    /// Derives the whole hierarchy from a 15-digit grid code.
    pub fn from_grid_code(grid: &str) -> Result<Self, CodeError> {
        if level_of(grid)? != Level::Grid {
            return Err(CodeError::Malformed(grid.to_owned()));
        }
        Ok(Hierarchy {
            grid: grid.to_owned(),
            community: grid[..12].to_owned(),
            street: grid[..9].to_owned(),
            county: grid[..6].to_owned(),
            city: format!("{}00", &grid[..4]),
            province: format!("{}0000", &grid[..2]),
        })
    }

    /// The hierarchy of a point that fell in a county but in no grid: only
    /// county and above are known.
    pub fn county_only(county: &str) -> Result<Self, CodeError> {
        if level_of(county)? != Level::County {
            return Err(CodeError::Malformed(county.to_owned()));
        }
        Ok(Hierarchy {
            grid: String::new(),
            community: String::new(),
            street: String::new(),
            county: county.to_owned(),
            city: format!("{}00", &county[..4]),
            province: format!("{}0000", &county[..2]),
        })
    }

    /// The code at a level ("" when unknown).
    pub fn at(&self, level: Level) -> &str {
        match level {
            Level::Grid => &self.grid,
            Level::Community => &self.community,
            Level::Street => &self.street,
            Level::County => &self.county,
            Level::City => &self.city,
            Level::Province => &self.province,
        }
    }

    /// The finest known code.
    pub fn finest(&self) -> &str {
        Level::ALL.iter().map(|l| self.at(*l)).find(|c| !c.is_empty()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_prefixes() {
        assert_eq!(level_of("370000"), Ok(Level::Province));
        assert_eq!(level_of("371000"), Ok(Level::City));
        assert_eq!(level_of("371002"), Ok(Level::County));
        assert_eq!(level_of("371002001"), Ok(Level::Street));
        assert_eq!(level_of("371002001002"), Ok(Level::Community));
        assert_eq!(level_of("371002001002003"), Ok(Level::Grid));
        assert!(level_of("37100").is_err());
        assert!(level_of("37100a").is_err());
        assert!(covers("370000", "371002001002003"));
        assert!(covers("371000", "371002"));
        assert!(!covers("371000", "372002"));
        assert!(covers("371002001", "371002001002003"));
        assert!(!covers("371002002", "371002001002003"));
        assert!(!covers("bogus", "371002"));
    }

    #[test]
    fn hierarchy_from_grid() {
        let h = Hierarchy::from_grid_code("371002001002003").unwrap();
        assert_eq!(h.community, "371002001002");
        assert_eq!(h.street, "371002001");
        assert_eq!(h.county, "371002");
        assert_eq!(h.city, "371000");
        assert_eq!(h.province, "370000");
        assert_eq!(h.finest(), "371002001002003");
        let c = Hierarchy::county_only("371082").unwrap();
        assert_eq!(c.finest(), "371082");
        assert!(Hierarchy::from_grid_code("371002").is_err());
    }
}
