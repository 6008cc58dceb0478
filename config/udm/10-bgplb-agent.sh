#!/bin/sh
# /data/on_boot.d/10-bgplb-agent.sh — run at every boot by UniFi OS's on-boot mechanism (written
# by `bgplb-agent install`). Firmware upgrades wipe the root filesystem; this puts the agent's
# unit back and (re)starts it. Everything the agent needs lives under /data/bgplb (binary, site
# file, TLS files, SQLite state). BGPLB_ROOT runs it inside another tree (the install tests).
set -eu
ROOT="${BGPLB_ROOT:-}"
[ -x "$ROOT/data/bgplb/bin/bgplb-agent" ] || { echo "bgplb: $ROOT/data/bgplb/bin/bgplb-agent missing" >&2; exit 1; }
mkdir -p "$ROOT/etc/systemd/system"
install -m 0644 "$ROOT/data/bgplb/bgplb-agent.service" "$ROOT/etc/systemd/system/bgplb-agent.service"
"$ROOT/data/bgplb/bin/bgplb-agent" --config "$ROOT/data/bgplb/site.toml" check-config
systemctl daemon-reload
systemctl enable bgplb-agent.service
systemctl restart bgplb-agent.service
