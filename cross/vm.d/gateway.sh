# The gateway test's script, run by systemd inside the aarch64 QEMU machine (cross/qemu-test):
# Debian's arm64 FRR started by its own unit, two cluster nodes as arm64 gobgpd speakers in network
# namespaces on a bridge that stands for the node network, and the static agent installed by the
# README's install block, run as written. Prints MEASURE lines and the markers cross/qemu-test
# checks; every wait is bounded. Busybox sh runs its own applets before PATH, so the rootfs's
# programs are called by full path.
set -eu
IP=/bin/ip
VTYSH=/usr/bin/vtysh
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }'; }
# wait_for WHAT SECONDS COMMAND...: run COMMAND every 0.5 s until it succeeds, for at most SECONDS.
wait_for() {
  what=$1 limit=$2; shift 2
  t0=$(up)
  until "$@" >/dev/null 2>&1; do
    if [ "$(since "$t0" | cut -d. -f1)" -ge "$limit" ]; then echo "TIMEOUT: $what after ${limit}s"; return 1; fi
    sleep 0.5
  done
}
# On failure: what FRR, the nodes and the agent said.
diagnose() {
  rc=$?
  [ "$rc" = 0 ] && return
  echo "== diagnostics (exit $rc)"
  $VTYSH -c 'show bgp summary' 2>&1 | tail -20
  tail -n 5 /tmp/gobgpd-n1.log /tmp/gobgpd-n2.log 2>&1
  systemctl status --no-pager bgplb-agent.service 2>&1 | tail -5
  journalctl --no-pager -u bgplb-agent.service 2>&1 | tail -n 30
}
trap diagnose EXIT
echo "== the network"
# QEMU's user network reaches eth0 at 10.0.2.15 (the host's forwarded port lands there).
$IP addr add 10.0.2.15/24 dev eth0
$IP link add br51 type bridge
$IP link set br51 up
$IP addr add 172.29.51.1/24 dev br51
$IP addr add fd47:25e1:2f96:51::1/64 dev br51 nodad
for n in 1 2; do
  $IP netns add "n$n"
  $IP link add "veth$n" type veth peer name eth0 netns "n$n"
  $IP link set "veth$n" master br51 up
  $IP -n "n$n" link set lo up
  $IP -n "n$n" link set eth0 up
  $IP -n "n$n" addr add "172.29.51.1$n/24" dev eth0
  $IP -n "n$n" addr add "fd47:25e1:2f96:51::1$n/64" dev eth0 nodad
done

echo "== FRR, as Debian packages it"
# The busybox machine has no users: FRR's privilege code and frrinit.sh look them up.
printf 'root:x:0:0:root:/root:/bin/sh\nfrr:x:100:101::/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nfrr:x:101:\nfrrvty:x:102:frr,root\n' >/etc/group
# The operator's one change: bgpd on (the agent's preflight checks it).
sed -i 's/^bgpd=no/bgpd=yes/' /etc/frr/daemons
# No PAM modules in the machine: vtysh lets root in without asking PAM.
printf 'service integrated-vtysh-config\nusername root nopassword\n' >/etc/frr/vtysh.conf
printf 'frr defaults traditional\nhostname gw\nno zebra nexthop kernel enable\n!\n' >/etc/frr/frr.conf
mkdir -p /var/log/frr /var/lib/frr /var/tmp
chown -R 100:101 /etc/frr /var/log/frr /var/lib/frr
systemctl start frr.service
wait_for "vtysh to answer" 60 $VTYSH -c 'show bgp summary json'
echo "FRR-UP $($VTYSH -c 'show version' | head -1)"

echo "== the nodes"
for n in 1 2; do
  $IP netns exec "n$n" /usr/bin/gobgpd -f "/files/n$n.toml" --api-hosts 127.0.0.1:50051 \
    --log-plain >"/tmp/gobgpd-n$n.log" 2>&1 &
done

echo "== the operator: the README's install block, as written"
mkdir -p /tmp/operator
cd /tmp/operator
cp /bin/bgplb-agent ./bgplb-agent
cp /files/site.toml ./site.toml
t_install=$(up)
sh -eux /files/readme-install.sh
echo "README-INSTALL-BLOCK-OK"
A="/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml"
$A pki issue --cluster home --out /tmp/issued
for f in ca.crt companion-home.crt companion-home.key; do
  echo "PEM $f $(base64 -w0 "/tmp/issued/$f")"
done
wait_for "the agent to serve" 120 wget -q -O /dev/null http://127.0.0.1:9478/readyz
echo "MEASURE install-to-serving $(since "$t_install") s"
echo "MEASURE boot-to-serving $(up) s (kernel start to the agent serving; FRR and the nodes start first)"
systemctl is-active bgplb-agent.service
echo "UNIT-ACTIVE"
B="/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml"
established() {
  for a in 172.29.51.11 172.29.51.12 fd47:25e1:2f96:51::11 fd47:25e1:2f96:51::12; do
    $VTYSH -c "show bgp neighbors $a json" | grep -q '"bgpState":"Established"' || return 1
  done
}
wait_for "both nodes Established in both families" 120 established
echo "SESSIONS-ESTABLISHED $(since "$t_install") s after install"
$IP -d link show eth0.52 | grep -q 'vlan protocol 802.1Q id 52' && echo "SEGMENT-VLAN-52"
$IP addr show eth0.52 | grep -q 'inet 172.29.52.1/24' && echo "SEGMENT-ADDRESS"

newest() { $B history --limit 1 | awk 'NR==2 {print $1}'; }
gen0=$(newest)
echo "GENERATION-BEFORE-REPORT $gen0"
echo "== a report from the host, through the forwarded port"
echo "READY-FOR-REPORT"
moved() {
  $VTYSH -c 'show running-config' >/tmp/running
  grep -q 'neighbor 172.29.51.14 ' /tmp/running && ! grep -q 'neighbor 172.29.51.13 ' /tmp/running
}
wait_for "the report's nodes in FRR" 180 moved
echo "NEIGHBOURS-FROM-REPORT"
# FRR runs the report's configuration before the agent records it (it reads FRR back first).
recorded() { [ "$(newest)" != "$gen0" ]; }
wait_for "the report's generation recorded" 60 recorded
gen=$(newest)
echo "GENERATION $gen"

echo "== the gateway's clock steps two hours ahead (NTP, a wrong RTC): the fresh report stays fresh"
/bin/date -s "@$(( $(/bin/date +%s) + 7200 ))" >/dev/null
sleep 1
metrics=$(wget -q -O - http://127.0.0.1:9478/metrics)
echo "$metrics" | grep '^bgplb_report_age_seconds{cluster="home"}'
echo "$metrics" | grep -q '^bgplb_report_stale{cluster="home"} 0' && echo "FRESH-AFTER-CLOCK-JUMP"
/bin/date -s "@$(( $(/bin/date +%s) - 7200 ))" >/dev/null

echo "== systemd restarts a killed agent"
pid=$(systemctl show -p MainPID --value bgplb-agent.service)
kill -9 "$pid"
t_kill=$(up)
restarted() { p=$(systemctl show -p MainPID --value bgplb-agent.service); [ "$p" != 0 ] && [ "$p" != "$pid" ] && wget -q -O /dev/null http://127.0.0.1:9478/readyz; }
wait_for "systemd to restart the agent" 60 restarted
echo "MEASURE kill-to-serving $(since "$t_kill") s"
echo "RESTARTED-BY-SYSTEMD"
wait_for "both nodes Established after the restart" 120 established
[ "$(newest)" = "$gen" ] || { echo "the restarted agent recorded generation $(newest) over $gen"; exit 1; }

echo "== a firmware upgrade: everything outside /data is gone, then UniFi OS runs on_boot.d"
$VTYSH -c 'show running-config' >/tmp/frr-before
systemctl stop bgplb-agent.service
systemctl disable bgplb-agent.service
rm -f /etc/systemd/system/bgplb-agent.service /tmp/bgplb-agent
systemctl daemon-reload
if systemctl cat bgplb-agent.service >/dev/null 2>&1; then echo "UNIT-STILL-THERE"; exit 1; fi
t_boot=$(up)
/data/on_boot.d/10-bgplb-agent.sh
wait_for "the agent to serve after the upgrade" 120 wget -q -O /dev/null http://127.0.0.1:9478/readyz
echo "MEASURE on-boot-to-serving $(since "$t_boot") s"
systemctl is-enabled bgplb-agent.service
wait_for "both nodes Established again" 120 established
$VTYSH -c 'show running-config' >/tmp/frr-after
if diff /tmp/frr-before /tmp/frr-after; then echo "FRR-UNCHANGED"; fi
after=$(newest)
[ "$after" = "$gen" ] && echo "SAME-GENERATION $after"
$B history --limit 5
$B plan | tee /tmp/plan
grep -q 'FRR runs the desired configuration: nothing to change' /tmp/plan && echo "PLAN-EMPTY"
$B status | head -1
grep -q 'BGPLB-home-V4' /etc/frr/frr.conf && echo "SAVED"
echo "GATEWAY-TEST-DONE"
