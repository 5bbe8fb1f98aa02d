//! Secret key files: the embedded issuer's signing key, the keyring of
//! personal information, the petition HMAC secret.
//!
//! A key file is never readable by anyone but its owner, not even for an
//! instant: its bytes go to a temporary file beside it, created with mode
//! 0600 at `open` (`O_CREAT | O_EXCL`, so the mode is the file's from its
//! first byte), which is fsynced and then moved into place; the directory is
//! fsynced after. A crash at any point leaves the old file or the new one,
//! whole, never a truncated key, so data sealed with it stays readable.
//! (The failpoint `keyfile.write` stops a process with the temporary file
//! written and not yet in place.)

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files of `path` are named `.<name>.tmp.<pid>.<n>`.
fn temp_prefix(path: &Path) -> io::Result<String> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a key file path needs a file name"))?;
    Ok(format!(".{}.tmp.", name.to_string_lossy()))
}

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A new file open for writing, readable and writable by its owner only.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Writes `bytes` to a fresh private temporary file beside `path`, fsynced.
fn write_temp(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = directory(path);
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{}{}.{}", temp_prefix(path)?, std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    let written = create_private(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    crate::failpoint::hit_blocking("keyfile.write");
    Ok(tmp)
}

/// Makes a rename or link in `path`'s directory durable, and removes the
/// temporary files of `path` that crashed writers left behind.
fn settle(path: &Path) -> io::Result<()> {
    let dir = directory(path);
    if let (Ok(prefix), Ok(entries)) = (temp_prefix(path), fs::read_dir(dir)) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Replaces the key file at `path` with `bytes`, atomically (a rotation).
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    settle(path)
}

/// Creates the key file at `path` with `bytes` unless it exists (a first
/// start). Returns false if it already existed: another process may have
/// created it a moment ago, and its key is the one to use, so the caller
/// reads the file.
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = write_temp(path, bytes)?;
    // A hard link never replaces an existing file: of two processes creating
    // the key at once, one wins and both go on with its key.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => settle(path).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // Another process creating the same key cleared our temporary file
        // after it won.
        Err(_) if path.exists() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn created_private_replaced_whole_and_never_overwritten_by_create() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("k.key");
        assert!(create(&path, b"one").unwrap());
        assert!(!create(&path, b"two").unwrap(), "an existing key is kept");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        replace(&path, b"three").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A crashed writer's temporary file is cleared by the next write.
        let stale = path.with_file_name(".k.key.tmp.1.0");
        fs::write(&stale, b"half").unwrap();
        replace(&path, b"four").unwrap();
        assert!(!stale.exists());
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.key")]);
    }
}
