//! The soak at full size, as a benchmark: `bgplb-soak [CHANGES] [ISOLATED_EVERY]` (default 10,000
//! and 50) prints the rate, applies per change, p50/p99 of cluster change → FRR, the agent's RSS
//! and the database size. Root, like every lab run; build with `cargo build --workspace --bins`.

fn main() {
    let mut args = std::env::args().skip(1);
    let changes = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let isolated_every = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let figures = bgplb_tests::soak::run(&bgplb_tests::soak::Options {
        changes,
        isolated_every,
        seed: 0x5eed_b91b,
    });
    figures.print();
}
