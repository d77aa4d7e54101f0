#!/usr/bin/env bash
# The lab tour (`make lab`): starts a 3-node lab and walks through what an
# admin does with it, checking every step's outcome; any wrong outcome
# stops the tour with a non-zero exit. The lab keeps running afterwards.
set -euo pipefail

PVEHCI=${PVEHCI:-./bin/pvehci}
export PVEHCI_LAB_DIR=${PVEHCI_LAB_DIR:-${TMPDIR:-/tmp}/pvehci-lab}
start=$(date +%s.%N)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\nTOUR FAILED: %s\n' "$*" >&2; exit 1; }
elapsed() { awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

command -v curl >/dev/null || fail "the tour needs curl: apt-get install curl"

if [ -S "$PVEHCI_LAB_DIR/lab.sock" ]; then
	step "Stopping the lab left in $PVEHCI_LAB_DIR"
	"$PVEHCI" lab down
fi

step "Start a 3-node lab (real daemons, raft and REST API over a simulated DRBD/LVM kernel)"
"$PVEHCI" lab up --nodes 3
# shellcheck disable=SC1091
. "$PVEHCI_LAB_DIR/env"
export LS_CONTROLLERS

step "Every node answers the LINSTOR REST API; /health is 200 on each"
for url in ${LS_CONTROLLERS//,/ }; do
	code=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
	echo "$url/health -> $code"
	[ "$code" = 200 ] || fail "$url/health answered $code"
done

step "Every node came up through pvehci bootstrap's steps from the cluster file; a second run plans nothing"
grep -c '^  - name: n' "$PVEHCI_LAB_DIR/cluster.yaml" | grep -qx 3 || fail "the lab's cluster file lacks its nodes"
out=$("$PVEHCI" lab exec n2 -- bootstrap --plan)
echo "$out"
[ "$out" = "nothing to do: this node is converged" ] || fail "bootstrap on n2 is not converged"
grep -q '^drbd: drbdstorage' "$PVEHCI_LAB_DIR/pve/pmxcfs/storage.cfg" || fail "no drbd entry in the lab's storage.cfg"
echo "storage.cfg (pmxcfs of the lab): $(grep -A3 '^drbd:' "$PVEHCI_LAB_DIR/pve/pmxcfs/storage.cfg" | tr '\n\t' '  ')"

step "Create VM 100 on n1: its disk is made through the Proxmox plugin's REST calls"
"$PVEHCI" lab vm create 100 --node n1 --size 1GiB
"$PVEHCI" resource list --controllers "$LS_CONTROLLERS"
rd=$("$PVEHCI" lab status --json | sed -n 's/.*"\(pm-[0-9a-f]*\)".*/\1/p' | head -1)
[ -n "$rd" ] || fail "no resource definition after vm create"
[ -f "$PVEHCI_LAB_DIR/nodes/n1/root/var/lib/pvehci/drbd.d/$rd.res" ] || fail "n1 has no $rd.res"
echo "n1 holds /var/lib/pvehci/drbd.d/$rd.res (under $PVEHCI_LAB_DIR/nodes/n1/root)"
curl -s "$(echo "$LS_CONTROLLERS" | cut -d, -f2)/v1/view/resources" | grep -q '"UpToDate"' || fail "no UpToDate replica in /v1/view/resources"

step "pvehci health on n2 judges every node from the leader's view"
"$PVEHCI" lab exec n2 -- health --check CLUSTER_VIEW --check SATELLITE_OFFLINE --check REPLICAS_BELOW_PLACE_COUNT \
	--check DRBD_SPLIT_BRAIN --check POOL_DATA_FULL --check JOB_FAILED | tee "$PVEHCI_LAB_DIR/health.txt" || fail "pvehci health is not OK on a healthy lab"
grep -q 'every node judged from leader' "$PVEHCI_LAB_DIR/health.txt" || fail "health did not use the leader's view"

step "qm snapshot 100 snap1: I/O suspended on every node, thin snapshots taken, I/O resumed; the VM then writes on"
"$PVEHCI" lab vm snapshot 100 snap1
"$PVEHCI" snapshot list --controllers "$LS_CONTROLLERS"
"$PVEHCI" snapshot list --controllers "$LS_CONTROLLERS" | grep "snap1" | grep -q Successful || fail "snap1 is not Successful"

step "qm rollback 100 snap1: every replica goes down, takes the snapshot's data, comes back UpToDate; the VM's later write is gone"
t0=$(date +%s.%N)
out=$("$PVEHCI" lab vm rollback 100 snap1) || fail "the rollback failed: $out"
echo "$out"
echo "rollback and restart took $(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
echo "$out" | grep -q 'holds "" now' || fail "the VM still reads what it wrote after the snapshot"
curl -s "$(echo "$LS_CONTROLLERS" | cut -d, -f1)/v1/view/resources?resources=$rd" | grep -q '"UpToDate"' || fail "no UpToDate replica after the rollback"

step "Grow the VM's disk by 1 GiB online, as the Proxmox plugin does on qm resize"
api1=$(echo "$LS_CONTROLLERS" | cut -d, -f1)
size=$(curl -s "$api1/v1/resource-definitions/$rd/volume-definitions/0" | sed -n 's/.*"size_kib":\([0-9]*\).*/\1/p')
[ -n "$size" ] || fail "no size for $rd volume 0"
t0=$(date +%s.%N)
answer=$(curl -s -w '\n%{http_code}' -X PUT -d "{\"size_kib\": $((size + 1048576))}" "$api1/v1/resource-definitions/$rd/volume-definitions/0")
code=$(echo "$answer" | tail -1)
echo "PUT …/volume-definitions/0 size_kib $size -> $((size + 1048576)): HTTP $code in $(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s"
[ "$code" = 200 ] || fail "resize answered $code: $answer"
echo "$answer" | grep -q 'not finished' && fail "the resize did not complete: $answer"
curl -s "$api1/v1/view/resources?resources=$rd" | grep -o '"allocated_size_kib":[0-9]*\|"usable_size_kib":[0-9]*' | sort -u | head -4

step "Corrupt a block of n2's copy behind DRBD's back; a weekly verify job, run now, finds it; health warns until it is acknowledged"
"$PVEHCI" lab corrupt n2 "$rd"
"$PVEHCI" lab exec n1 -- schedule add verify-tour --cron '42 0 * * 0' --kind verify --target "resource-definition:$rd"
"$PVEHCI" lab exec n1 -- schedule run-now verify-tour --wait 90s || fail "the verify run did not finish"
"$PVEHCI" lab exec n1 -- schedule history verify-tour
"$PVEHCI" lab exec n1 -- schedule history verify-tour | grep -q "KiB out of sync" || fail "the verify run did not report the corrupted block"
if "$PVEHCI" lab exec n1 -- health --check VERIFY_OUT_OF_SYNC > "$PVEHCI_LAB_DIR/verify-health.txt"; then
	cat "$PVEHCI_LAB_DIR/verify-health.txt"; fail "health did not warn about the data the verify found out of sync"
fi
grep VERIFY_OUT_OF_SYNC -A2 "$PVEHCI_LAB_DIR/verify-health.txt"
"$PVEHCI" lab exec n1 -- schedule ack "$rd"
"$PVEHCI" lab exec n1 -- health --check VERIFY_OUT_OF_SYNC || fail "health still warns after schedule ack"
"$PVEHCI" lab exec n1 -- schedule remove verify-tour --yes

step "Live-migrate VM 100 to n3: activate on n3 (both Primary), stop and deactivate on n1"
"$PVEHCI" lab vm migrate 100 n3
"$PVEHCI" resource list --controllers "$LS_CONTROLLERS"
"$PVEHCI" resource list --controllers "$LS_CONTROLLERS" -o json | grep -q '"n3"' || fail "no resource on n3 after the migration"

step "Watch the replica follow the VM: n3 gets a disk after the lab's 5 s delay, then the surplus replica goes"
relocated=""
for i in $(seq 1 300); do
	st=$("$PVEHCI" lab status)
	diskful=$(echo "$st" | awk -v rd="$rd" '$1 == rd && $3 == "diskful"' | wc -l)
	if echo "$st" | awk -v rd="$rd" '$1 == rd && $2 == "n3" && $3 == "diskful" && $4 == "UpToDate"' | grep -q . && [ "$diskful" = 2 ]; then
		relocated=yes
		break
	fi
	sleep 0.2
done
"$PVEHCI" lab status | sed -n '/^RESOURCE/,$p'
[ -n "$relocated" ] || fail "the replica did not follow VM 100 to n3 within 60 s"
echo "n3 holds an UpToDate replica; back to 2 diskful replicas"
echo "the relocation's decisions, from the replicated state (pvehci events):"
# The leader records the end at its next look after the surplus went.
for i in $(seq 1 50); do
	"$PVEHCI" lab exec n2 -- events --resource "$rd" > "$PVEHCI_LAB_DIR/events.txt"
	grep -q 'relocation.*done' "$PVEHCI_LAB_DIR/events.txt" && break
	sleep 0.2
done
cat "$PVEHCI_LAB_DIR/events.txt"
grep -q 'relocation.*done' "$PVEHCI_LAB_DIR/events.txt" || fail "pvehci events does not show the relocation's end within 10 s"

step "Kill the leader's daemon (SIGKILL); the cluster elects another and keeps answering"
leader=$("$PVEHCI" lab status --json | sed -n 's/^  "leader": "\(n[0-9]*\)",/\1/p')
[ -n "$leader" ] || fail "no leader"
"$PVEHCI" lab kill "$leader"
for i in $(seq 1 50); do
	now=$("$PVEHCI" lab status --json | sed -n 's/^  "leader": "\(n[0-9]*\)",/\1/p')
	[ -n "$now" ] && [ "$now" != "$leader" ] && break
	sleep 0.2
done
[ -n "$now" ] && [ "$now" != "$leader" ] || fail "no new leader after killing $leader"
echo "leader was $leader, now $now"
"$PVEHCI" resource-definition list --controllers "$LS_CONTROLLERS" | grep -q "$rd" || fail "$rd not listed after the failover"
"$PVEHCI" lab start "$leader"

step "qm delsnapshot 100 snap1, then delete VM 100: the plugin's deactivate and free_image remove every replica"
"$PVEHCI" lab vm delsnapshot 100 snap1
"$PVEHCI" snapshot list --controllers "$LS_CONTROLLERS" | grep -q snap1 && fail "snap1 still listed"
"$PVEHCI" lab vm delete 100
"$PVEHCI" resource list --controllers "$LS_CONTROLLERS" -o json | grep -q "$rd" && fail "$rd still has resources"
for n in n1 n2 n3; do
	[ ! -e "$PVEHCI_LAB_DIR/nodes/$n/root/var/lib/pvehci/drbd.d/$rd.res" ] || fail "$n still has $rd.res"
done
echo "no replica and no .res file left"

step "Lab status"
"$PVEHCI" lab status

printf '\nTour done in %s s. The lab keeps running:\n  . %s/env; %s resource list --controllers $LS_CONTROLLERS\n  %s lab status | lab vm create 101 --node n2 | lab kill n1 | lab start n1\nStop it with: %s lab down\n' \
	"$(elapsed)" "$PVEHCI_LAB_DIR" "$PVEHCI" "$PVEHCI" "$PVEHCI"
