//! Client traffic for failover measurements: a new TCP connection to a VIP every few tens of
//! milliseconds from the lab's client namespace, each on its own thread (a connection to a dead
//! node must not delay the next one), every outcome recorded with its start time.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When the connection attempt started.
    pub at: Instant,
    /// The answering node's name, or why the request failed.
    pub result: Result<String, String>,
}

/// Requests running in the background until [`Traffic::stop`].
pub struct Traffic {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

/// What a run of requests saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub samples: Vec<Sample>,
}

impl Traffic {
    /// Starts a request to `addr` every `every` from namespace `ns`; each gets `timeout` to
    /// connect and answer.
    pub fn start(ns: &str, addr: SocketAddr, every: Duration, timeout: Duration) -> Traffic {
        Traffic::follow(ns, move || Some(addr), every, timeout)
    }

    /// Like [`Traffic::start`], but each request goes to wherever `target` says now (a client
    /// that follows a Service's address as DNS would); `None` counts as a failed request.
    pub fn follow(
        ns: &str,
        target: impl Fn() -> Option<SocketAddr> + Send + 'static,
        every: Duration,
        timeout: Duration,
    ) -> Traffic {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let path = format!("/var/run/netns/{ns}");
        let handle = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open the client namespace");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("join the client namespace");
            // Threads started from here live in the client namespace too.
            let mut workers = Vec::new();
            let mut next = Instant::now();
            // Bounded: at most an hour of traffic.
            let limit = Instant::now() + Duration::from_secs(3600);
            while !st.load(Ordering::SeqCst) && Instant::now() < limit {
                let s = s.clone();
                let addr = target();
                workers.push(std::thread::spawn(move || {
                    let at = Instant::now();
                    let result = match addr {
                        Some(a) => request(a, timeout),
                        None => Err("no address".into()),
                    };
                    s.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(Sample { at, result });
                }));
                next += every;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                workers.retain(|w| !w.is_finished());
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Traffic {
            samples,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sending, waits for the requests in flight, returns every sample in start order.
    pub fn stop(mut self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        let mut samples =
            std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()));
        samples.sort_by_key(|s| s.at);
        Outcome { samples }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn request(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let out = out.trim().to_string();
    if out.is_empty() {
        return Err("connection closed without an answer".into());
    }
    Ok(out)
}

impl Outcome {
    pub fn failed(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.result.is_err()).collect()
    }

    /// From `since` to the start of the last failed request (zero when none failed).
    pub fn loss_window(&self, since: Instant) -> Duration {
        self.failed()
            .last()
            .map_or(Duration::ZERO, |s| s.at.saturating_duration_since(since))
    }

    /// Requests that started at or after `since`.
    pub fn after(&self, since: Instant) -> Outcome {
        Outcome {
            samples: self
                .samples
                .iter()
                .filter(|s| s.at >= since)
                .cloned()
                .collect(),
        }
    }

    /// The longest time requests kept failing: from the first failed request of a run to the
    /// first answered one after it (or the last request, when the run never ended). Zero when
    /// none failed; the resolution is the request interval.
    pub fn longest_outage(&self) -> Duration {
        let mut longest = Duration::ZERO;
        let mut run_start: Option<Instant> = None;
        for s in &self.samples {
            match (&s.result, run_start) {
                (Err(_), None) => run_start = Some(s.at),
                (Ok(_), Some(start)) => {
                    longest = longest.max(s.at - start);
                    run_start = None;
                }
                _ => {}
            }
        }
        if let (Some(start), Some(last)) = (run_start, self.samples.last()) {
            longest = longest.max(last.at - start);
        }
        longest
    }

    /// Which nodes answered, with counts.
    pub fn answered_by(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for s in &self.samples {
            if let Ok(n) = &s.result {
                *m.entry(n.clone()).or_default() += 1;
            }
        }
        m
    }
}
