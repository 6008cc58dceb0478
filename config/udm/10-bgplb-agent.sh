#!/bin/sh
# /data/on_boot.d/10-bgplb-agent.sh — run at every boot by udm-boot. Firmware upgrades wipe the
# root filesystem; this puts the agent's unit back and (re)starts it. Everything the agent needs
# lives under /data/bgplb (binary, site file, TLS files, SQLite state).
set -eu
[ -x /data/bgplb/bin/bgplb-agent ] || { echo "bgplb: /data/bgplb/bin/bgplb-agent missing" >&2; exit 1; }
install -m 0644 /data/bgplb/bgplb-agent.service /etc/systemd/system/bgplb-agent.service
systemctl daemon-reload
/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml check-config
systemctl enable --now bgplb-agent.service
systemctl restart bgplb-agent.service
