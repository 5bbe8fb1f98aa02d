//! gridwork-mediation runs as its own process, and refuses to start against a
//! database schema that is behind, with a message saying what to do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

use std::process::Command;

#[test]
fn refuses_a_schema_that_is_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gridwork-mediation"))
        .env("GRIDWORK_DATA_DIR", dir.path())
        .env("GRIDWORK_HTTP__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gridwork migrate"), "{err}");
}
