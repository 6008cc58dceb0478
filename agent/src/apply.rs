//! Verified apply with generations and automatic rollback.
//!
//! ```text
//! desired text ──▶ plan(desired, running) ──empty & same hash──▶ no-op (no FRR command, no generation)
//!                        │
//!                        ▼
//!        write files atomically, vtysh -f script, read back, plan again
//!                        │
//!          empty ────────┴──────── not empty / FRR error
//!            │                              │
//!   record `applied`, write memory   restore the last good generation (or the pre-apply state),
//!                                    record `failed` with where FRR was returned to
//! ```
//!
//! Only this module decides what is applied; [`crate::vtysh`] runs it and [`crate::store`]
//! records it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bgplb_frr::churn::RouteMapDeletions;
use bgplb_frr::overlay::Overlay;
use bgplb_frr::{plan::plan, Owned, Plan};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::files;
use crate::store::{Generation, NewGeneration, Outcome, SharedStore, Source, Store};
use crate::vtysh::{Running, Vtysh};

/// Applies desired configurations to one FRR and records them. Every apply holds the agent's
/// lock file, so two agents (a CLI apply and the daemon) never apply at the same time.
pub struct Applier {
    pub vtysh: Vtysh,
    pub store: SharedStore,
    data_dir: PathBuf,
    save: bool,
    lock_wait: Duration,
    retention: bgplb_site::Retention,
}

/// Free space an apply needs on the state database's file system beyond its own text (four
/// times the configuration and script: the generation row, the WAL, the files in `frr/`).
pub const RECORD_RESERVE: u64 = 1 << 20;

/// Where a failed apply returns FRR: the last good generation with the overlay, or what FRR ran
/// before when there is none.
fn rollback_target(
    current: &Option<Generation>,
    running: &Running,
    overlay: &Overlay,
) -> (Owned, String, Option<i64>) {
    match current {
        Some(c) => (
            overlay.owned(&c.config),
            format!("generation {}", c.number),
            Some(c.number),
        ),
        None => (
            Owned::from_text(&running.config),
            "the configuration FRR ran before".to_string(),
            None,
        ),
    }
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Applied {
    /// FRR already runs the desired configuration and it is the current generation.
    Unchanged {
        generation: Option<i64>,
        /// Why FRR's configuration file lacks it, when a save failed and failed again.
        #[serde(skip_serializing_if = "Option::is_none")]
        unsaved: Option<String>,
    },
    /// A new generation is current.
    Applied {
        generation: i64,
        changes: usize,
        warnings: Vec<String>,
        #[serde(rename = "duration_ms")]
        duration: u128,
    },
}

/// The plan against the running FRR, for `plan` and for the executor.
pub struct Planned {
    pub plan: Plan,
    pub running: Running,
    pub current: Option<Generation>,
    pub hash: String,
}

/// SHA-256 of a configuration, hex.
pub fn hash(config: &str) -> String {
    hex::encode(Sha256::digest(config.as_bytes()))
}

impl Applier {
    /// Opens the state in `data_dir`; applies wait up to `lock_wait` for another agent's apply.
    pub fn open(
        data_dir: &Path,
        vtysh: Vtysh,
        save: bool,
        lock_wait: Duration,
    ) -> Result<Applier, Error> {
        files::private_dir(data_dir)?;
        files::private_dir(&data_dir.join("frr"))?;
        let store = SharedStore::new(Store::open(&data_dir.join("state.db"))?);
        Ok(Applier::with_store(data_dir, vtysh, save, lock_wait, store))
    }

    /// An applier sharing an already open store (the daemon's).
    pub fn with_store(
        data_dir: &Path,
        vtysh: Vtysh,
        save: bool,
        lock_wait: Duration,
        store: SharedStore,
    ) -> Applier {
        Applier {
            vtysh,
            store,
            data_dir: data_dir.to_path_buf(),
            save,
            lock_wait,
            retention: bgplb_site::Retention::default(),
        }
    }

    /// How much history to keep (the site's `[agent.retention]`): pruned before every apply.
    pub fn retaining(mut self, retention: bgplb_site::Retention) -> Applier {
        self.retention = retention;
        self
    }

    fn prune(&self) {
        let keep = self.retention.clone();
        match self.store.blocking(move |s| s.prune(&keep)) {
            Ok((0, 0)) => {}
            Ok((generations, events)) => {
                tracing::debug!(generations, events, "history pruned")
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune the history"),
        }
    }

    /// Plans `desired` with `overlay` on top against the running FRR without changing anything.
    pub async fn plan(&self, desired: &str, overlay: &Overlay) -> Result<Planned, Error> {
        let running = self.vtysh.running().await?;
        let have = Owned::from_text(&running.config);
        let plan =
            plan(&overlay.owned(desired), &have)?.for_frr(&have, self.vtysh.frr_version().await?);
        Ok(Planned {
            plan,
            running,
            current: self.store.blocking(|s| s.current())?,
            hash: hash(desired),
        })
    }

    /// Applies `desired` with the liveness `overlay` on top: a no-op when FRR runs it already,
    /// else a new generation (of `desired` alone: the overlay is never recorded as one),
    /// verified by reading FRR back; on failure FRR is returned to the last good generation,
    /// overlay included.
    #[tracing::instrument(skip_all, fields(source = source.as_str()))]
    pub async fn apply(
        &mut self,
        desired: &str,
        overlay: &Overlay,
        source: Source,
        restores: Option<i64>,
    ) -> Result<Applied, Error> {
        let _lock = files::lock_async(&self.data_dir.join("agent.lock"), self.lock_wait).await?;
        self.prune();
        let started = Instant::now();
        let Planned {
            plan,
            running,
            current,
            hash,
        } = self.plan(desired, overlay).await?;
        crate::fault::point("after-plan");
        let same_as_current = current.as_ref().is_some_and(|c| c.hash == hash);
        if plan.is_empty() && same_as_current {
            tracing::debug!("FRR already runs the current generation");
            let generation = current.map(|c| c.number);
            let unsaved = self.ensure_saved(generation).await?;
            return Ok(Applied::Unchanged {
                generation,
                unsaved,
            });
        }
        // Never apply what cannot be recorded: FRR is changed only once the store has room and
        // takes a write (a full or read-only /data leaves FRR on the last recorded generation).
        let script = plan.script();
        let need = RECORD_RESERVE + 4 * (desired.len() + script.len()) as u64;
        self.store.blocking(|s| s.writable(need))?;
        let source = if same_as_current && source != Source::Rollback {
            self.store.blocking(|s| {
                s.event(
                    "drift",
                    &format!(
                        "FRR drifted from generation {}: {} change(s) re-applied",
                        current.as_ref().map_or(0, |c| c.number),
                        plan.changes.len()
                    ),
                )
            })?;
            Source::Drift
        } else {
            source
        };
        for w in &plan.warnings {
            tracing::warn!(warning = %w, "plan");
        }

        let frr_dir = self.data_dir.join("frr");
        files::write_atomic(&frr_dir.join("bgplb.conf"), desired)?;
        let script_path = frr_dir.join("apply.vtysh");
        files::write_atomic(&script_path, &script)?;

        let applied = if plan.is_empty() {
            Ok(())
        } else {
            self.run_script(&script_path, &script).await
        };
        crate::fault::point("after-vtysh");
        let desired_owned = overlay.owned(desired);
        let verified = match &applied {
            Ok(()) => self.verify(&desired_owned).await,
            Err(_) => Ok(()),
        };
        let failure = match (applied, verified) {
            (Ok(()), Ok(())) => None,
            (Err(e), _) | (Ok(()), Err(e)) => Some(e.to_string()),
        };

        let Some(detail) = failure else {
            crate::fault::point("after-verify");
            let recorded = self.store.blocking(|s| {
                s.record(&NewGeneration {
                    source,
                    config: desired,
                    hash: &hash,
                    outcome: Outcome::Applied,
                    error: None,
                    script: &script,
                    changes: plan.changes.len(),
                    restores,
                    rolled_back_to: None,
                    duration_ms: started.elapsed().as_millis(),
                })
            });
            let generation = match recorded {
                Ok(g) => g,
                Err(e) => {
                    // The space went between the check and the record: FRR goes back to what is
                    // recorded, so the store and FRR still agree.
                    let (target, target_name, _) = rollback_target(&current, &running, overlay);
                    let back = match self.restore(target, desired_owned.asn).await {
                        Ok(()) => format!("FRR was rolled back to {target_name}"),
                        Err(r) => format!("rolling back to {target_name} failed too ({r})"),
                    };
                    tracing::error!(error = %e, %back, "applied but could not record");
                    return Err(Error::StoreUnwritable {
                        path: self.data_dir.join("state.db"),
                        detail: format!("recording the generation failed ({e}); {back}"),
                    });
                }
            };
            tracing::info!(generation, changes = plan.changes.len(), "applied");
            crate::fault::point("before-save");
            let mut warnings = plan.warnings.clone();
            let unsaved = if plan.is_empty() {
                self.ensure_saved(Some(generation)).await?
            } else {
                self.save(Some(generation)).await?;
                self.store.blocking(|s| s.unsaved())?
            };
            warnings.extend(unsaved);
            return Ok(Applied::Applied {
                generation,
                changes: plan.changes.len(),
                warnings,
                duration: started.elapsed().as_millis(),
            });
        };

        // Return FRR to the last good generation, or to what it ran before this attempt.
        let (target, target_name, rolled_back_to) = rollback_target(&current, &running, overlay);
        let rollback = match self.restore(target, desired_owned.asn).await {
            Ok(()) => format!("FRR was rolled back to {target_name}"),
            Err(e) => format!(
                "rolling back to {target_name} failed too ({e}); FRR restarts from its saved configuration, \
                 run `bgplb-agent apply` again once FRR answers"
            ),
        };
        let generation = self.store.blocking(|s| {
            s.record(&NewGeneration {
                source,
                config: desired,
                hash: &hash,
                outcome: Outcome::Failed,
                error: Some(&format!("{detail}; {rollback}")),
                script: &script,
                changes: plan.changes.len(),
                restores,
                rolled_back_to: rolled_back_to.filter(|_| rollback.starts_with("FRR was")),
                duration_ms: started.elapsed().as_millis(),
            })
        })?;
        self.store.blocking(|s| {
            s.event(
                "apply-failed",
                &format!("generation {generation}: {detail}; {rollback}"),
            )
        })?;
        tracing::info!(generation, detail = %crate::redact::redact(&detail), %rollback, "apply failed");
        Err(Error::ApplyFailed {
            generation,
            detail,
            rollback,
        })
    }

    /// `write memory`, recorded: FRR restarts with what it runs now. A failure is an event and a
    /// state that status, metrics and `validate` show until a later save works.
    async fn save(&self, generation: Option<i64>) -> Result<(), Error> {
        if !self.save {
            return Ok(());
        }
        let result = self.vtysh.write_memory().await.map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::warn!(error = %e, "write memory failed");
            self.store.blocking(|s| {
                s.event(
                    "save-failed",
                    &format!(
                        "generation {}: {e}",
                        generation.map_or("-".into(), |g| g.to_string())
                    ),
                )
            })?;
        }
        self.store.blocking(|s| s.set_saved(generation, result))
    }

    /// Retries a save that failed before; returns why FRR's file is still behind, if it is.
    pub async fn ensure_saved(&self, generation: Option<i64>) -> Result<Option<String>, Error> {
        if !self.save {
            return Ok(None);
        }
        // Failed, or never run for this generation (the agent stopped between recording it and
        // `write memory`): FRR's file may lack what it runs.
        let behind = self
            .store
            .blocking(|s| s.saved())?
            .is_none_or(|s| !s.ok || (generation.is_some() && s.generation != generation));
        if behind {
            self.save(generation).await?;
        }
        self.store.blocking(|s| s.unsaved())
    }

    /// Reads FRR back: the owned part must match `desired` exactly.
    async fn verify(&self, desired: &Owned) -> Result<(), Error> {
        let running = self.vtysh.running().await?;
        let rest = plan(desired, &Owned::from_text(&running.config))?;
        if rest.is_empty() {
            return Ok(());
        }
        let shown: Vec<String> = rest.changes.iter().take(5).map(|c| c.to_string()).collect();
        Err(Error::FrrRejected {
            what: "read-back".into(),
            detail: format!(
                "running config differs from the applied one in {} line(s): {}",
                rest.changes.len(),
                shown.join(" | ")
            ),
        })
    }

    async fn run_script(&self, path: &Path, text: &str) -> Result<(), Error> {
        run_script(&self.vtysh, &self.data_dir, path, text).await
    }

    /// Makes FRR's owned configuration equal `target`.
    async fn restore(&self, mut target: Owned, asn: Option<u32>) -> Result<(), Error> {
        if target.asn.is_none() {
            target.asn = asn;
        }
        let running = self.vtysh.running().await?;
        let have = Owned::from_text(&running.config);
        let rollback = plan(&target, &have)?.for_frr(&have, self.vtysh.frr_version().await?);
        if !rollback.is_empty() {
            let path = self.data_dir.join("frr").join("rollback.vtysh");
            let script = rollback.script();
            files::write_atomic(&path, &script)?;
            self.run_script(&path, &script).await?;
        }
        self.verify(&target).await
    }

    /// Re-applies generation `to` (default: the applied generation before the current one),
    /// with the liveness `overlay` on top.
    pub async fn rollback(
        &mut self,
        to: Option<i64>,
        overlay: &Overlay,
    ) -> Result<(Generation, Applied), Error> {
        let target = match to {
            Some(n) => self
                .store
                .blocking(|s| s.get(n))?
                .ok_or(Error::NoSuchGeneration(n))?,
            None => {
                let current = self.store.blocking(|s| s.current())?.ok_or_else(|| {
                    Error::NoRollbackTarget("no generation has been applied yet".into())
                })?;
                self.store
                    .blocking(|s| s.previous_applied(current.number))?
                    .ok_or_else(|| {
                        Error::NoRollbackTarget(format!(
                            "generation {} is the first applied one",
                            current.number
                        ))
                    })?
            }
        };
        let result = self
            .apply(
                &target.config,
                overlay,
                Source::Rollback,
                Some(target.number),
            )
            .await?;
        Ok((target, result))
    }
}

/// Runs the script `text`, written at `path`, with `vtysh -f`. On FRR before 8.3 a script that
/// touches a route-map deleted by name moments ago first waits until FRR has processed the
/// deletion, or zebra and bgpd crash ([`bgplb_frr::churn`]); the deletions are recorded in
/// `<data_dir>/frr/route-map-deletions`, shared by the daemon and one-shot commands.
pub async fn run_script(
    vtysh: &Vtysh,
    data_dir: &Path,
    path: &Path,
    text: &str,
) -> Result<(), Error> {
    let churn_safe = match vtysh.frr_version().await {
        Ok(v) => v.survives_route_map_churn(),
        // FRR does not answer: the script fails as it would.
        Err(_) => true,
    };
    if churn_safe {
        return vtysh.apply_script(path).await.map(|_| ());
    }
    let record_path = data_dir.join("frr").join("route-map-deletions");
    let mut record =
        RouteMapDeletions::from_text(&std::fs::read_to_string(&record_path).unwrap_or_default());
    if let Some((wait, route_map)) = record.wait_before(text, SystemTime::now()) {
        tracing::info!(
            %route_map,
            ms = wait.as_millis() as u64,
            "this FRR crashes when a route-map deleted moments ago is touched again \
             (FRRouting/frr#10708): waiting for it to settle"
        );
        tokio::time::sleep(wait).await;
    }
    let applied = vtysh.apply_script(path).await;
    let before = record.clone();
    record.record(text, SystemTime::now());
    if record != before {
        if let Some(dir) = record_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = files::write_atomic(&record_path, &record.to_text()) {
            tracing::warn!(error = %e, "cannot record the route-maps deleted");
        }
    }
    applied.map(|_| ())
}
