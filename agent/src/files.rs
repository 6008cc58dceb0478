//! Atomic file writes and the agent's lock file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Error;

/// Writes `contents` to `path` so that readers see the old file or the new one, never a part:
/// a temporary file in the same directory, fsynced, renamed over the target, directory fsynced.
/// The file is readable by its owner only (it may hold the BGP password).
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(Error::io("cannot write", path))
}

/// Creates the agent's private directory `dir` (and its parents) and makes it 0700: it holds
/// the BGP password in rendered configurations and in the state database.
pub fn private_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::io("cannot create", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(Error::io("cannot restrict", dir))
}

/// Makes an existing file readable by its owner only (the SQLite files).
pub fn private_file(path: &Path) -> Result<(), Error> {
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("cannot restrict", path)(e))
        }
        _ => Ok(()),
    }
}

/// Takes an exclusive lock on `path`, waiting up to `wait` for another holder to let go.
pub fn lock(path: &Path, wait: Duration) -> Result<File, Error> {
    let deadline = Instant::now() + wait;
    loop {
        match try_lock(path)? {
            Some(file) => return Ok(file),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            None => return Err(held_by_another(path)),
        }
    }
}

/// Takes an exclusive lock on `path` if nobody holds it: `None` when another holder does.
pub fn try_lock(path: &Path) -> Result<Option<File>, Error> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io("cannot open lock file", path))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("cannot lock", path)(e)),
    }
}

fn held_by_another(path: &Path) -> Error {
    Error::Io {
        what: "another bgplb-agent holds the lock",
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::WouldBlock),
    }
}

/// Like [`lock`], waiting asynchronously.
pub async fn lock_async(path: &Path, wait: Duration) -> Result<File, Error> {
    let deadline = Instant::now() + wait;
    loop {
        match try_lock(path)? {
            Some(file) => return Ok(file),
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => return Err(held_by_another(path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgplb.conf");
        write_atomic(&path, "one").unwrap();
        write_atomic(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn second_lock_waits_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.lock");
        let _held = lock(&path, Duration::ZERO).unwrap();
        let err = lock(&path, Duration::from_millis(100)).unwrap_err();
        assert!(err.to_string().contains("another bgplb-agent"), "{err}");
    }
}
