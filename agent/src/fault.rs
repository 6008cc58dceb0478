//! Fault injection for the crash tests: with `BGPLB_FAULT=<point>` in its environment, the agent
//! aborts (SIGABRT, no unwinding, no destructors: what a power cut or an OOM kill leaves) when it
//! reaches that point of an apply. Unset, a point costs one environment lookup per apply.
//!
//! Points, in the order an apply passes them: `after-plan` (nothing written yet), `after-vtysh`
//! (FRR changed, not read back), `after-verify` (read back, not recorded), `during-record` (the
//! generation inserted, its SQLite transaction not committed), `before-save` (recorded, `write
//! memory` not run), `during-save` (`write memory` started: vtysh loses the agent mid-way).

/// Aborts the process when `BGPLB_FAULT` names `point`.
pub fn point(point: &str) {
    if std::env::var("BGPLB_FAULT").is_ok_and(|v| v == point) {
        eprintln!("BGPLB_FAULT={point}: aborting here");
        std::process::abort();
    }
}
