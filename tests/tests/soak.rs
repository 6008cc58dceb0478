//! The soak at CI size (tests/src/soak.rs; the full 10,000 changes: `bgplb-soak`): random cluster
//! changes through the companion, the agent and FRR; at the end FRR runs exactly the desired
//! configuration, the never-removed node's session was never reset, the database stays within
//! retention and the agent's RSS stays bounded.

use bgplb_tests::soak::{run, Options};

#[test]
fn random_cluster_changes_end_in_exactly_the_desired_configuration() {
    let figures = run(&Options {
        changes: 300,
        isolated_every: 25,
        seed: 0x5eed_b91b,
    });
    figures.print();
    assert!(
        figures.generations_kept <= 60,
        "retention keeps 50 generations (plus the current, previous and pinned), found {}",
        figures.generations_kept
    );
    assert!(
        figures.db_bytes_end < 8 * 1024 * 1024,
        "state.db grew to {} bytes",
        figures.db_bytes_end
    );
    assert!(
        figures.rss_kib_end < 64 * 1024,
        "the agent's RSS is {} KiB after the soak",
        figures.rss_kib_end
    );
}
