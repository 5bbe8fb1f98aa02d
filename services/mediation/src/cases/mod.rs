//! The dispatcher's cases, one job per module: the queue list with its
//! filters, sort and cursor ([`list`]), a case's detail ([`detail`]), the
//! lifecycle actions ([`act`]) and splitting off a linked report
//! ([`split`]), the open cases counted per queue or grid ([`counts`]), the grid worker's view of their grid ([`mine`]), how a case
//! looks ([`view`]) and the publishing of committed changes to the live
//! streams ([`publish`]). Who may see and do what is [`crate::access`]'s;
//! the SQL is [`crate::repo`]'s.

pub mod act;
pub mod counts;
pub mod detail;
pub mod list;
pub mod mine;
pub mod publish;
pub mod split;
pub mod view;
