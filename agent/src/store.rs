//! The agent's state in SQLite: applied configurations as numbered generations, and events.
//!
//! This module is the only owner of the database connection. Every apply attempt is a row in
//! `generations`; the current generation is the newest one whose outcome is `applied`, so a
//! failed attempt is recorded without displacing the last good configuration.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::Error;

/// Where an apply came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `bgplb-agent apply`.
    Cli,
    /// A report from the companion.
    Report,
    /// `bgplb-agent rollback`.
    Rollback,
    /// FRR's running config drifted from the current generation and was re-asserted.
    Drift,
    /// The daemon's periodic or startup reconcile.
    Daemon,
    /// `bgplb-agent store reset`: a new history started from FRR's running configuration.
    Reset,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cli => "cli",
            Source::Report => "report",
            Source::Rollback => "rollback",
            Source::Drift => "drift",
            Source::Daemon => "daemon",
            Source::Reset => "store-reset",
        }
    }
}

/// Result of one apply attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Applied and read back identical: this is now the current generation.
    Applied,
    /// FRR refused it or it did not read back; FRR was rolled back (see `rolled_back_to`).
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "applied" => Outcome::Applied,
            _ => Outcome::Failed,
        }
    }
}

/// One recorded apply attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    pub number: i64,
    pub created_at: String,
    pub source: String,
    /// The complete rendered FRR configuration.
    pub config: String,
    /// SHA-256 of `config`, hex.
    pub hash: String,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// The vtysh script that was run (empty when FRR already matched).
    pub script: String,
    /// Number of changes in the script.
    pub changes: i64,
    /// For a rollback: the generation whose config was restored.
    pub restores: Option<i64>,
    /// For a failed attempt: the generation FRR was returned to.
    pub rolled_back_to: Option<i64>,
    pub duration_ms: i64,
}

/// What to record for a new attempt.
#[derive(Debug, Clone)]
pub struct NewGeneration<'a> {
    pub source: Source,
    pub config: &'a str,
    pub hash: &'a str,
    pub outcome: Outcome,
    pub error: Option<&'a str>,
    pub script: &'a str,
    pub changes: usize,
    pub restores: Option<i64>,
    pub rolled_back_to: Option<i64>,
    pub duration_ms: u128,
}

/// A cluster's last accepted report, as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReport {
    pub cluster: String,
    pub generation: u64,
    /// SHA-256 of the body.
    pub hash: String,
    pub received_at: String,
    pub received_unix: i64,
    pub body: String,
}

/// One event (refused report, rollback, drift, ...). The same kind and message again only
/// counts: `repeats` and `last_at`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub message: String,
    pub repeats: i64,
    pub last_at: Option<String>,
}

impl Event {
    /// The message as people read it: a repeated event with its count and last time.
    pub fn display_message(&self) -> String {
        match (self.repeats, &self.last_at) {
            (n, Some(last)) if n > 1 => format!("{} (×{n}, last {last})", self.message),
            _ => self.message.clone(),
        }
    }
}

/// Whether FRR's configuration file has what FRR runs (the last `write memory`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaveState {
    /// The generation that was current when FRR was last asked to save.
    pub generation: Option<i64>,
    pub ok: bool,
    pub error: Option<String>,
    pub at: String,
}

/// A generation the daemon keeps instead of following the site file and the reports (set by
/// `rollback`, cleared by `unpin` or `apply`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pin {
    pub generation: i64,
    pub at: String,
    pub reason: String,
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pinned to generation {} ({}, {}): the daemon keeps it instead of following the site file and the reports; `bgplb-agent unpin` resumes",
            self.generation, self.reason, self.at
        )
    }
}

/// Stored node liveness: (cluster, node, JSON body) rows, and the overlay's JSON.
pub type StoredLiveness = (Vec<(String, String, String)>, Option<String>);

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The store shared by the daemon's tasks. Held only for single queries, never across an await.
#[derive(Clone)]
pub struct SharedStore(std::sync::Arc<std::sync::Mutex<Store>>);

impl SharedStore {
    pub fn new(store: Store) -> SharedStore {
        SharedStore(std::sync::Arc::new(std::sync::Mutex::new(store)))
    }

    /// Runs `f` with the store, off the async workers' feet: SQLite may wait for a lock (up to
    /// the busy timeout) or fsync, and the runtime's other tasks (TLS handshakes, the probes)
    /// must go on meanwhile. On a current-thread runtime (the tests) it simply runs.
    pub fn blocking<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let run = || f(&mut self.get());
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    /// The store, for one short operation.
    pub fn get(&self) -> std::sync::MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it has its own
        // transactions), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

// reports, liveness, overlay, saved and pin tables added within version 1 (CREATE IF NOT EXISTS)
const SCHEMA_VERSION: i64 = 2;

/// From version 1: events count their repeats instead of repeating rows.
const MIGRATE_TO_2: &str = "
ALTER TABLE events ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN last_at TEXT;
";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS generations (
    number          INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL,
    source          TEXT NOT NULL,
    config          TEXT NOT NULL,
    hash            TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    error           TEXT,
    script          TEXT NOT NULL,
    changes         INTEGER NOT NULL,
    restores        INTEGER,
    rolled_back_to  INTEGER,
    duration_ms     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    cluster      TEXT PRIMARY KEY,
    generation   INTEGER NOT NULL,
    hash         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    received_unix INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS liveness (
    cluster  TEXT NOT NULL,
    node     TEXT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (cluster, node)
);
CREATE TABLE IF NOT EXISTS overlay (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    body  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS saved (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER,
    ok          INTEGER NOT NULL,
    error       TEXT,
    at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pin (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL,
    at          TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, id);
";

/// What `store check` found.
#[derive(Debug, Clone, Serialize)]
pub struct StoreCheck {
    /// SQLite's `integrity_check`: `["ok"]` for a sound file.
    pub integrity: Vec<String>,
    pub generations: i64,
    pub events: i64,
    pub reports: i64,
    pub bytes: u64,
}

impl StoreCheck {
    pub fn ok(&self) -> bool {
        self.integrity == ["ok"]
    }
}

/// Moves the database at `path` (with its -wal and -shm files) aside as
/// `<path>.damaged-<unix time>`, and returns where it went.
pub fn move_aside(path: &Path) -> Result<PathBuf, Error> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".damaged-{stamp}"));
    let aside = PathBuf::from(aside);
    for suffix in ["", "-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut to = aside.as_os_str().to_owned();
        to.push(suffix);
        match std::fs::rename(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Io {
                    what: "cannot move aside",
                    path: PathBuf::from(from),
                    source,
                })
            }
        }
    }
    Ok(aside)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let err = |source| Error::Store {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            crate::files::private_dir(dir)?;
        }
        // A damaged file is told apart from other trouble (permissions, a full disk): the agent
        // refuses to start on it, and `store reset` is the way out.
        let damaged = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                Error::StoreDamaged {
                    path: path.to_path_buf(),
                    detail: source.to_string(),
                }
            }
            _ => err(source),
        };
        let conn = Connection::open(path).map_err(damaged)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(damaged)?;
        // Switching a new file to WAL takes an exclusive lock that SQLite does not wait for
        // with the busy timeout: another process opening it at the same moment gets "database
        // is locked" at once. Bounded retries (5 s).
        let mut tries = 0;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(damaged(e)),
            }
        }
        let quick: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(damaged)?;
        if quick != "ok" {
            return Err(Error::StoreDamaged {
                path: path.to_path_buf(),
                detail: quick,
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(Error::StoreVersion {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == SCHEMA_VERSION {
            // Tables added within this version (CREATE IF NOT EXISTS: writes nothing when
            // they are there).
            conn.execute_batch(SCHEMA).map_err(err)?;
        } else {
            // A new or older database. Two processes may open it at once (the daemon just
            // started by `install`, a CLI command right after): the schema and its migration
            // run under the write lock and are judged again there.
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            let migrated = (|| -> rusqlite::Result<()> {
                let now: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                conn.execute_batch(SCHEMA)?;
                let has_repeats = conn
                    .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'repeats'")?
                    .exists([])?;
                if !has_repeats {
                    conn.execute_batch(MIGRATE_TO_2)?;
                }
                if now != SCHEMA_VERSION {
                    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                }
                Ok(())
            })();
            match migrated {
                Ok(()) => conn.execute_batch("COMMIT").map_err(err)?,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    return Err(err(e));
                }
            }
        }
        // Generations hold the BGP password: the database is the owner's only.
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            crate::files::private_file(Path::new(&p))?;
        }
        // user_version is written only when it changes (above): opening a sound database writes
        // nothing, so `status` and `history` work on a full or read-only file system.
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Whether an apply can be recorded: at least `need` bytes free for unprivileged use on the
    /// database's file system, which is writable, and a write to the database that commits.
    /// Checked before FRR is changed, so the agent never applies what it cannot record.
    pub fn writable(&self, need: u64) -> Result<(), Error> {
        let problem = |detail: String| Error::StoreUnwritable {
            path: self.path.clone(),
            detail,
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let fs = nix::sys::statvfs::statvfs(dir)
            .map_err(|e| problem(format!("cannot read its file system's state: {e}")))?;
        if fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return Err(problem(format!(
                "{} is on a read-only file system",
                dir.display()
            )));
        }
        let free = fs.blocks_available() * fs.fragment_size();
        if free < need {
            return Err(problem(format!(
                "{} KiB free on {}, an apply needs {} KiB",
                free / 1024,
                dir.display(),
                need.div_ceil(1024)
            )));
        }
        // A real write: SQLite's journal and the file must take it (a full quota, a file made
        // read-only underneath the agent).
        self.conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK");
                // ext4 turned read-only after an I/O error still shows `rw` in statvfs.
                let read_only = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&self.path)
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ReadOnlyFilesystem);
                if read_only {
                    problem(format!(
                        "{} is on a read-only file system (the kernel turned it read-only: see \
                         dmesg)",
                        dir.display()
                    ))
                } else {
                    problem(format!("a test write failed: {e}"))
                }
            })
    }

    /// Removes what `keep` does not keep: generations beyond the newest `keep.generations` or
    /// older than `keep.max_age_days` (never the current one, the applied one before it, or a
    /// pinned one), and events beyond the newest `keep.events` or older than the age limit.
    /// SQLite reuses the freed pages, so the file stops growing. Returns (generations, events)
    /// removed.
    pub fn prune(&self, keep: &bgplb_site::Retention) -> Result<(usize, usize), Error> {
        let e = self.err();
        let cutoff = (time::OffsetDateTime::now_utc()
            - time::Duration::days(i64::from(keep.max_age_days)))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
        let current = self.current()?.map(|g| g.number);
        let before = match current {
            Some(n) => self.previous_applied(n)?.map(|g| g.number),
            None => None,
        };
        let pinned = self.pinned()?.map(|p| p.generation);
        let generations = self
            .conn
            .execute(
                "DELETE FROM generations
                 WHERE (number <= (SELECT number FROM generations ORDER BY number DESC
                                   LIMIT 1 OFFSET ?1)
                        OR created_at < ?2)
                   AND number NOT IN (?3, ?4, ?5)",
                params![
                    i64::from(keep.generations),
                    cutoff,
                    current.unwrap_or(-1),
                    before.unwrap_or(-1),
                    pinned.unwrap_or(-1)
                ],
            )
            .map_err(&e)?;
        let events = self
            .conn
            .execute(
                "DELETE FROM events
                 WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)
                    OR coalesce(last_at, at) < ?2",
                params![i64::from(keep.events), cutoff],
            )
            .map_err(&e)?;
        Ok((generations, events))
    }

    /// SQLite's full integrity check ("ok" when the file is sound) and what the file holds.
    pub fn check(&self) -> Result<StoreCheck, Error> {
        let e = self.err();
        let integrity: Vec<String> = self
            .conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(&e)?;
        let count = |table: &str| -> Result<i64, Error> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .map_err(&e)
        };
        Ok(StoreCheck {
            integrity,
            generations: count("generations")?,
            events: count("events")?,
            reports: count("reports")?,
            bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
        })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |source| Error::Store {
            path: self.path.clone(),
            source,
        }
    }

    /// Records an attempt and returns its generation number.
    pub fn record(&self, g: &NewGeneration<'_>) -> Result<i64, Error> {
        let tx = self.conn.unchecked_transaction().map_err(self.err())?;
        tx.execute(
            "INSERT INTO generations (created_at, source, config, hash, outcome, error, script,
                     changes, restores, rolled_back_to, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                now(),
                g.source.as_str(),
                g.config,
                g.hash,
                g.outcome.as_str(),
                g.error,
                g.script,
                g.changes as i64,
                g.restores,
                g.rolled_back_to,
                i64::try_from(g.duration_ms).unwrap_or(i64::MAX),
            ],
        )
        .map_err(self.err())?;
        let number = tx.last_insert_rowid();
        crate::fault::point("during-record");
        tx.commit().map_err(self.err())?;
        Ok(number)
    }

    /// The current generation: the newest applied one.
    pub fn current(&self) -> Result<Option<Generation>, Error> {
        self.query_one(
            "SELECT * FROM generations WHERE outcome = 'applied' ORDER BY number DESC LIMIT 1",
            [],
        )
    }

    pub fn get(&self, number: i64) -> Result<Option<Generation>, Error> {
        self.query_one("SELECT * FROM generations WHERE number = ?1", [number])
    }

    /// The applied generation before `number`.
    pub fn previous_applied(&self, number: i64) -> Result<Option<Generation>, Error> {
        self.query_one(
            "SELECT * FROM generations WHERE outcome = 'applied' AND number < ?1
             ORDER BY number DESC LIMIT 1",
            [number],
        )
    }

    /// The newest `limit` generations, newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<Generation>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM generations ORDER BY number DESC LIMIT ?1")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([limit as i64], row_to_generation)
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    pub fn count(&self) -> Result<i64, Error> {
        self.conn
            .query_row("SELECT COUNT(*) FROM generations", [], |r| r.get(0))
            .map_err(self.err())
    }

    fn query_one<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Option<Generation>, Error> {
        self.conn
            .query_row(sql, params, row_to_generation)
            .optional()
            .map_err(self.err())
    }

    /// Keeps `body` as the cluster's last accepted report.
    pub fn save_report(&self, r: &StoredReport) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO reports (cluster, generation, hash, received_at, received_unix, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(cluster) DO UPDATE SET generation = ?2, hash = ?3, received_at = ?4,
                     received_unix = ?5, body = ?6",
                params![
                    r.cluster,
                    i64::try_from(r.generation).unwrap_or(i64::MAX),
                    r.hash,
                    r.received_at,
                    r.received_unix,
                    r.body
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Every cluster's last accepted report.
    pub fn reports(&self) -> Result<Vec<StoredReport>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT cluster, generation, hash, received_at, received_unix, body FROM reports ORDER BY cluster")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredReport {
                    cluster: r.get(0)?,
                    generation: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    hash: r.get(2)?,
                    received_at: r.get(3)?,
                    received_unix: r.get(4)?,
                    body: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }

    /// Replaces the stored node liveness (one JSON body per node) and the overlay FRR was
    /// given, in one transaction.
    pub fn save_liveness(
        &mut self,
        nodes: &[(String, String, String)],
        overlay: &str,
    ) -> Result<(), Error> {
        let path = self.path.clone();
        let err = move |source| Error::Store {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&err)?;
        tx.execute("DELETE FROM liveness", []).map_err(&err)?;
        for (cluster, node, body) in nodes {
            tx.execute(
                "INSERT INTO liveness (cluster, node, body) VALUES (?1, ?2, ?3)",
                params![cluster, node, body],
            )
            .map_err(&err)?;
        }
        tx.execute(
            "INSERT INTO overlay (id, body) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET body = ?1",
            params![overlay],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// The stored node liveness: (cluster, node, JSON body) rows and the overlay's JSON.
    pub fn liveness(&self) -> Result<StoredLiveness, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT cluster, node, body FROM liveness ORDER BY cluster, node")
            .map_err(self.err())?;
        let nodes = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(self.err())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.err())?;
        let overlay = self
            .conn
            .query_row("SELECT body FROM overlay WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.err())?;
        Ok((nodes, overlay))
    }

    /// Records the outcome of a `write memory`.
    pub fn set_saved(
        &self,
        generation: Option<i64>,
        result: Result<(), String>,
    ) -> Result<(), Error> {
        let (ok, error) = match result {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e)),
        };
        self.conn
            .execute(
                "INSERT INTO saved (id, generation, ok, error, at) VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET generation = ?1, ok = ?2, error = ?3, at = ?4",
                params![generation, ok, error, now()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The last `write memory`'s outcome (`None`: never recorded).
    pub fn saved(&self) -> Result<Option<SaveState>, Error> {
        self.conn
            .query_row(
                "SELECT generation, ok, error, at FROM saved WHERE id = 1",
                [],
                |r| {
                    Ok(SaveState {
                        generation: r.get(0)?,
                        ok: r.get(1)?,
                        error: r.get(2)?,
                        at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// Why FRR's saved configuration may lack what it runs, if it may.
    pub fn unsaved(&self) -> Result<Option<String>, Error> {
        Ok(self.saved()?.filter(|s| !s.ok).map(|s| {
            format!(
                "FRR's configuration file lacks {} (write memory failed at {}: {}); FRR would restart without it; bgplb retries on every apply and drift check",
                s.generation
                    .map_or("the applied configuration".to_string(), |g| format!("generation {g}")),
                s.at,
                s.error.unwrap_or_default()
            )
        }))
    }

    /// Pins generation `generation`.
    pub fn pin(&self, generation: i64, reason: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO pin (id, generation, at, reason) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET generation = ?1, at = ?2, reason = ?3",
                params![generation, now(), reason],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes the pin; returns the one there was.
    pub fn unpin(&self) -> Result<Option<Pin>, Error> {
        let pin = self.pinned()?;
        self.conn
            .execute("DELETE FROM pin", [])
            .map_err(self.err())?;
        Ok(pin)
    }

    pub fn pinned(&self) -> Result<Option<Pin>, Error> {
        self.conn
            .query_row(
                "SELECT generation, at, reason FROM pin WHERE id = 1",
                [],
                |r| {
                    Ok(Pin {
                        generation: r.get(0)?,
                        at: r.get(1)?,
                        reason: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.err())
    }

    /// Records an event; secrets in `message` are redacted. When the last event of this kind
    /// has the same message, it is counted again instead of written again.
    pub fn event(&self, kind: &str, message: &str) -> Result<(), Error> {
        let message = crate::redact::redact(message);
        let last: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, message FROM events WHERE kind = ?1 ORDER BY id DESC LIMIT 1",
                [kind],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err())?;
        match last {
            Some((id, m)) if m == message => self.conn.execute(
                "UPDATE events SET repeats = repeats + 1, last_at = ?1 WHERE id = ?2",
                params![now(), id],
            ),
            _ => self.conn.execute(
                "INSERT INTO events (at, kind, message) VALUES (?1, ?2, ?3)",
                params![now(), kind, message],
            ),
        }
        .map_err(self.err())?;
        Ok(())
    }

    pub fn events(&self, limit: usize) -> Result<Vec<Event>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, at, kind, message, repeats, last_at FROM events ORDER BY id DESC LIMIT ?1",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    message: r.get(3)?,
                    repeats: r.get(4)?,
                    last_at: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.err())
    }
}

fn row_to_generation(r: &rusqlite::Row<'_>) -> rusqlite::Result<Generation> {
    Ok(Generation {
        number: r.get("number")?,
        created_at: r.get("created_at")?,
        source: r.get("source")?,
        config: r.get("config")?,
        hash: r.get("hash")?,
        outcome: Outcome::parse(&r.get::<_, String>("outcome")?),
        error: r.get("error")?,
        script: r.get("script")?,
        changes: r.get("changes")?,
        restores: r.get("restores")?,
        rolled_back_to: r.get("rolled_back_to")?,
        duration_ms: r.get("duration_ms")?,
    })
}

/// Current time, RFC 3339 UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon and a CLI command opening a new database at the same moment: both succeed
    /// (before, the second one's migration failed with "duplicate column name: repeats").
    #[test]
    fn two_processes_opening_a_new_database_at_once_both_succeed() {
        for round in 0..30 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (path, barrier) = (path.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Store::open(&path).map(|_| ())
                    })
                })
                .collect();
            for h in handles {
                h.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
            }
        }
    }

    fn attempt<'a>(config: &'a str, outcome: Outcome) -> NewGeneration<'a> {
        NewGeneration {
            source: Source::Cli,
            config,
            hash: "h",
            outcome,
            error: None,
            script: "",
            changes: 0,
            restores: None,
            rolled_back_to: None,
            duration_ms: 1,
        }
    }

    #[test]
    fn failed_attempts_do_not_become_current() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert!(store.current().unwrap().is_none());
        let one = store.record(&attempt("a", Outcome::Applied)).unwrap();
        let two = store.record(&attempt("b", Outcome::Failed)).unwrap();
        assert_eq!((one, two), (1, 2));
        assert_eq!(store.current().unwrap().unwrap().number, 1);
        let three = store.record(&attempt("c", Outcome::Applied)).unwrap();
        assert_eq!(store.current().unwrap().unwrap().config, "c");
        assert_eq!(store.previous_applied(three).unwrap().unwrap().number, 1);
        assert_eq!(store.history(10).unwrap().len(), 3);
    }

    #[test]
    fn repeated_events_are_counted_not_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        for _ in 0..50 {
            store
                .event("segment-failed", "parent br0 is missing")
                .unwrap();
            store.event("drift", "one change re-applied").unwrap();
        }
        store
            .event("segment-failed", "parent br1 is missing")
            .unwrap();
        let events = store.events(100).unwrap();
        assert_eq!(events.len(), 3, "{events:#?}");
        assert_eq!(events[1].repeats, 50);
        assert_eq!(events[2].repeats, 50);
        assert!(events[2].last_at.is_some());
    }

    #[test]
    fn a_version_1_database_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
                 INSERT INTO events (at, kind, message) VALUES ('2026-11-25T00:00:00Z', 'drift', 'old');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        store.event("drift", "old").unwrap();
        let events = store.events(10).unwrap();
        assert_eq!((events.len(), events[0].repeats), (1, 2));
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Store::open(&path)
            .unwrap()
            .record(&attempt("a", Outcome::Applied))
            .unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.current().unwrap().unwrap().config, "a");
    }

    fn numbers(store: &Store) -> Vec<i64> {
        let mut stmt = store
            .conn
            .prepare("SELECT number FROM generations ORDER BY number")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn pruning_keeps_the_newest_and_never_the_current_the_one_before_or_a_pinned_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let keep = bgplb_site::Retention {
            generations: 10,
            events: 100,
            max_age_days: 30,
        };
        store.record(&attempt("one", Outcome::Applied)).unwrap();
        store.record(&attempt("two", Outcome::Applied)).unwrap();
        store.record(&attempt("three", Outcome::Applied)).unwrap();
        store.pin(1, "test").unwrap();
        for _ in 0..37 {
            store.record(&attempt("bad", Outcome::Failed)).unwrap();
        }
        assert_eq!(store.prune(&keep).unwrap().0, 27);
        // The newest ten (31-40), the current (3), the one before (2), the pinned one (1).
        let mut want = vec![1, 2, 3];
        want.extend(31..=40);
        assert_eq!(numbers(&store), want);
        assert_eq!(store.prune(&keep).unwrap(), (0, 0), "pruning is idempotent");

        // Too old goes whatever the count, except what is protected.
        store
            .conn
            .execute(
                "UPDATE generations SET created_at = '2000-01-01T00:00:00Z' WHERE number IN (1, 2, 3, 31, 32)",
                [],
            )
            .unwrap();
        assert_eq!(store.prune(&keep).unwrap().0, 2);
        assert_eq!(numbers(&store)[..4], [1, 2, 3, 33]);
        assert_eq!(store.current().unwrap().unwrap().config, "three");

        // Events: the newest `events`, none too old.
        for i in 0..150 {
            store.event("test", &format!("event {i}")).unwrap();
        }
        assert_eq!(store.prune(&keep).unwrap().1, 50);
        let events = store.events(1000).unwrap();
        assert_eq!(events.len(), 100);
        assert_eq!(events[0].message, "event 149");
        store
            .conn
            .execute(
                "UPDATE events SET at = '2000-01-01T00:00:00Z' WHERE message = 'event 60'",
                [],
            )
            .unwrap();
        assert_eq!(store.prune(&keep).unwrap().1, 1);
    }

    #[test]
    fn the_file_stops_growing_under_a_stream_of_generations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let keep = bgplb_site::Retention {
            generations: 20,
            events: 100,
            max_age_days: 365,
        };
        // A 250-node configuration is about 56 kB; 20 kB each here, 400 generations.
        let config = "neighbor 172.29.51.11 peer-group BGPLB-home-V4\n".repeat(400);
        let mut sizes = Vec::new();
        for i in 0..400 {
            store
                .record(&attempt(&format!("{config}{i}"), Outcome::Applied))
                .unwrap();
            store.event("apply", &format!("generation {i}")).unwrap();
            store.prune(&keep).unwrap();
            if i % 100 == 99 {
                store
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
                sizes.push(std::fs::metadata(&path).unwrap().len());
            }
        }
        // Freed pages are reused: after the first hundred the file does not grow.
        assert!(
            sizes.windows(2).all(|w| w[1] <= w[0] + 64 * 1024),
            "the file grew: {sizes:?}"
        );
        assert!(sizes[3] < 2 * 1024 * 1024, "{sizes:?}");
        assert_eq!(numbers(&store).len(), 20);
    }
}
