# Sourced by cross/build-agent and cross/build-companion: Debian's Rust toolchain (rustc-web),
# whatever rustup puts first on PATH, and a cargo environment that does not depend on who called.
#
# Run from a test (`cargo test` sets CARGO_MANIFEST_DIR, CARGO_PKG_*, LD_LIBRARY_PATH, ... for
# the test binary), cargo would see e.g. ring's build script input CARGO_MANIFEST_DIR changed and
# rebuild every aarch64 dependency: ten minutes for nothing. So the calling package's variables go.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
unset RUSTUP_TOOLCHAIN RUSTUP_TOOLCHAIN_SOURCE RUSTC_WRAPPER RUST_RECURSION_COUNT CARGO LD_LIBRARY_PATH || true
for _var in $(compgen -e); do
  case $_var in
    CARGO_MANIFEST_*|CARGO_PKG_*|CARGO_BIN_EXE_*|CARGO_CRATE_NAME|CARGO_BIN_NAME|CARGO_PRIMARY_PACKAGE|CARGO_TARGET_TMPDIR|CARGO_RUSTC_CURRENT_DIR)
      unset "$_var" ;;
  esac
done
unset _var
# Release builds are never incremental, but cargo fingerprints the variable: pin it, so a caller
# with CARGO_INCREMENTAL unset and one with 0 (scripts/test) share one build.
export CARGO_INCREMENTAL=0
# C code (bundled SQLite, ring) built with the cross compiler; the cc crate would guess the same.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
