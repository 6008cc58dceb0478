//! `bgplb-testpki DIR`: writes the test PKI (see `bgplb_tests::pki`).

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/pki".into());
    bgplb_tests::pki::generate(std::path::Path::new(&dir));
    println!("test PKI written to {dir}");
}
