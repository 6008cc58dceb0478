//! Who else changes FRR: the FRR watch's record of changes to bgplb's configuration made by
//! someone else (bgpd restarted from a file without bgplb's part, a controller reloading FRR, an
//! edit through vtysh), and the decision to re-apply or to stop fighting.
//!
//! Each such change is re-applied at once, at most `limit` times within `window`; the next one
//! starts a fight: the agent stops re-applying, says what keeps changing FRR (status check
//! `frr-ownership`, `bgplb_frr_fight`, an event) and resumes when FRR runs bgplb's configuration
//! again, which is what `bgplb-agent apply` does once the operator has dealt with the cause.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::netcheck::Check;

/// What to do about a change someone else made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Put bgplb's configuration back now.
    Reapply,
    /// Too many re-applies: stop, with this message for status and events.
    Fight(String),
    /// Already stopped: leave FRR alone.
    Fighting,
}

#[derive(Debug)]
pub struct Ownership {
    limit: usize,
    window: Duration,
    /// When each re-apply was decided, oldest first, none older than `window`.
    reapplies: VecDeque<Instant>,
    /// The last change seen, and when.
    last: Option<(Instant, String)>,
    /// Why the agent stopped re-applying, while it has.
    fight: Option<String>,
}

impl Ownership {
    pub fn new(limit: u32, window: Duration) -> Ownership {
        Ownership {
            limit: limit.max(1) as usize,
            window,
            reapplies: VecDeque::new(),
            last: None,
            fight: None,
        }
    }

    /// New limits from an edited site file; the record is kept.
    pub fn set_limits(&mut self, limit: u32, window: Duration) {
        self.limit = limit.max(1) as usize;
        self.window = window;
    }

    pub fn fighting(&self) -> bool {
        self.fight.is_some()
    }

    /// Someone else changed bgplb's configuration in FRR: `what` says who and how.
    pub fn changed(&mut self, now: Instant, what: &str) -> Verdict {
        self.last = Some((now, what.to_string()));
        if self.fight.is_some() {
            return Verdict::Fighting;
        }
        self.forget_old(now);
        if self.reapplies.len() >= self.limit {
            let why = format!(
                "bgplb's configuration in FRR was undone {} times within {} s, and again now ({what}); \
                 the agent stopped re-applying it: find what rewrites FRR (the UniFi controller \
                 provisioning its own BGP configuration, a script, a person), stop it, then run \
                 `bgplb-agent apply`",
                self.reapplies.len() + 1,
                self.window.as_secs()
            );
            self.fight = Some(why.clone());
            return Verdict::Fight(why);
        }
        self.reapplies.push_back(now);
        Verdict::Reapply
    }

    /// FRR runs bgplb's configuration (again). True when this ends a fight.
    pub fn restored(&mut self) -> bool {
        if self.fight.take().is_some() {
            self.reapplies.clear();
            return true;
        }
        false
    }

    /// The status check: failing while fighting, a warning while recent changes are remembered.
    pub fn check(&mut self, now: Instant) -> Check {
        self.forget_old(now);
        if let Some(why) = &self.fight {
            return Check::new("frr-ownership", false, vec![why.clone()]);
        }
        match (&self.last, self.reapplies.len()) {
            (Some((at, what)), n) if n > 0 => Check::warn(
                "frr-ownership",
                vec![format!(
                    "someone else changed bgplb's configuration in FRR {n} time(s) in the last {} s, \
                     re-applied each time; the last {} s ago: {what}",
                    self.window.as_secs(),
                    now.saturating_duration_since(*at).as_secs()
                )],
            ),
            _ => Check::new(
                "frr-ownership",
                true,
                vec!["FRR runs bgplb's configuration as applied".into()],
            ),
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some(t) = self.reapplies.front() {
            if now.saturating_duration_since(*t) > self.window {
                self.reapplies.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_applies_up_to_the_limit_then_stops_until_restored() {
        let t0 = Instant::now();
        let mut o = Ownership::new(3, Duration::from_secs(600));
        assert!(o.check(t0).ok && !o.check(t0).warning);
        for i in 0..3 {
            let v = o.changed(t0 + Duration::from_secs(i), "bgpd restarted");
            assert_eq!(v, Verdict::Reapply, "re-apply {i}");
        }
        assert!(o.check(t0).ok && o.check(t0).warning, "recent changes warn");
        let Verdict::Fight(why) = o.changed(t0 + Duration::from_secs(5), "edited: neighbor gone")
        else {
            panic!("the fourth change within the window starts a fight");
        };
        assert!(why.contains("undone 4 times within 600 s") && why.contains("neighbor gone"));
        assert!(o.fighting());
        assert_eq!(
            o.changed(t0 + Duration::from_secs(6), "x"),
            Verdict::Fighting
        );
        assert!(!o.check(t0 + Duration::from_secs(6)).ok);
        assert!(
            o.restored(),
            "FRR running bgplb's configuration ends the fight"
        );
        assert!(!o.restored());
        assert_eq!(
            o.changed(t0 + Duration::from_secs(7), "x"),
            Verdict::Reapply
        );
    }

    #[test]
    fn changes_older_than_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut o = Ownership::new(2, Duration::from_secs(60));
        assert_eq!(o.changed(t0, "a"), Verdict::Reapply);
        assert_eq!(
            o.changed(t0 + Duration::from_secs(30), "b"),
            Verdict::Reapply
        );
        // The first is 61 s old by now: two in the window again, not three.
        assert_eq!(
            o.changed(t0 + Duration::from_secs(61), "c"),
            Verdict::Reapply
        );
        assert!(matches!(
            o.changed(t0 + Duration::from_secs(62), "d"),
            Verdict::Fight(_)
        ));
        let later = t0 + Duration::from_secs(500);
        let mut calm = Ownership::new(2, Duration::from_secs(60));
        calm.changed(t0, "a");
        let c = calm.check(later);
        assert!(
            c.ok && !c.warning,
            "an old change is no longer a warning: {c:?}"
        );
    }
}
