//! Running code inside a lab namespace: a thread that joins the namespace first, so every socket
//! it opens lives there. The host's own namespace is never given a lab address.

use std::fs::File;

use nix::sched::{setns, CloneFlags};

/// Runs `f` on a new thread inside the network namespace `ns` and returns its result.
pub fn run_in<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        setns(&file, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
    .join()
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs an async block on a single-threaded runtime inside `ns`.
pub fn block_on_in<T, F>(ns: &str, f: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    run_in(ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f())
    })
}

/// A bare namespace with only loopback, removed on drop: a private place for a test server and
/// its client.
pub struct Scratch {
    pub name: String,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "blt{}x{}{tag}",
            std::process::id(),
            900 + N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        crate::cmd::run(&["ip", "netns", "add", &name]);
        crate::cmd::run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Scratch { name }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        crate::cmd::quiet(&["ip", "netns", "delete", &self.name]);
    }
}
