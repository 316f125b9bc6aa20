#!/usr/bin/env bash
# Regenerates ferry/symbol-order.txt, the release binary's code layout (see ferry/build.rs):
# runs a local cluster's apiserver, controller-manager and scheduler under callgrind, once on
# the embedded store and once on etcd, through start-up and 60 s of idle, then through some
# kubectl work (a Deployment applied, exposed, scaled, updated and deleted), and lists the
# functions each component executed as `lld --symbol-ordering-file` reads them: first those
# run at idle, then those run only under work; within each, those of all three components,
# then those of two, then each one's own; within a group, in the order they had in the binary
# profiled (the compiler's, the first time), which keeps callers near their callees.
#
#   cargo build --release -p ferry && ferry/symbol-order.sh [target/release/ferry]
#   ferry/symbol-order.sh --check [target/release/ferry]   # how much of the list a build has
#
# Needs valgrind, etcd, kubectl, python3 and nm. Takes ~3 minutes. Regenerate after changes that
# rename or add much of the code a component runs at idle (a stale list costs memory, never
# correctness), and after a compiler upgrade (symbol hashes change).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --check ]; then
    ferry=${2:-target/release/ferry}
    listed=$(wc -l <ferry/symbol-order.txt)
    found=$(nm --defined-only "$ferry" | awk '{print $NF}' | sort -u |
        comm -12 - <(sort -u ferry/symbol-order.txt) | wc -l)
    echo "$ferry has $found of the $listed functions ferry/symbol-order.txt lists"
    # Fewer than nine in ten: the list is stale for this build; regenerate it.
    [ $((found * 10)) -ge $((listed * 9)) ]
    exit
fi
ferry=$(readlink -f "${1:-target/release/ferry}")
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))

# The components' command lines and credentials, as `ferry up` makes them.
"$ferry" up --detach --data-dir "$work/up" --port "$port" --no-kubeconfig-update >/dev/null
ps -eo args | grep -E "^$ferry (apiserver|controller-manager|scheduler|kubelet) " \
    | grep -F -- "$work/up" >"$work/commands"
"$ferry" down --data-dir "$work/up" >/dev/null

profile() { # profile OUT [ETCD-URL]
    local out=$1 extra=() pids=()
    mkdir -p "$out"
    rm -rf "$work/up/store"
    [ $# -gt 1 ] && extra=("--etcd-servers=$2")
    while read -r -a command; do
        local component=${command[1]}
        case $component in
        kubelet) "${command[@]}" >/dev/null 2>&1 & ;;
        apiserver)
            valgrind --tool=callgrind --demangle=no --callgrind-out-file="$out/$component" \
                "${command[@]}" "${extra[@]}" >"$out/$component.log" 2>&1 &
            ;;
        *)
            valgrind --tool=callgrind --demangle=no --callgrind-out-file="$out/$component" \
                "${command[@]}" >"$out/$component.log" 2>&1 &
            ;;
        esac
        pids+=($!)
        # The apiserver serves before the others start, as under `ferry up` (slowly: callgrind).
        [ "$component" = apiserver ] && sleep 20
    done <"$work/commands"
    sleep 60
    for component in apiserver controller-manager scheduler; do
        callgrind_control --dump=idle "$(pgrep -f "callgrind-out-file=$out/$component ")" \
            >/dev/null
    done
    exercise "$out"
    for component in apiserver controller-manager scheduler; do
        callgrind_control --dump=work "$(pgrep -f "callgrind-out-file=$out/$component ")" \
            >/dev/null
    done
    kill -TERM "${pids[@]}"
    wait "${pids[@]}" || true
}

# exercise OUT: what a user does with a cluster (slowly: the components run under callgrind).
exercise() {
    local k=(kubectl --kubeconfig "$work/up/kubeconfig" --request-timeout=120s)
    "${k[@]}" apply -f - >"$1/work.log" 2>&1 <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: layout, labels: {app: layout}}
spec:
  replicas: 10
  selector: {matchLabels: {app: layout}}
  template:
    metadata: {labels: {app: layout}}
    spec: {containers: [{name: web, image: nginx:1.27}]}
YAML
    {
        "${k[@]}" rollout status deploy/layout --timeout=600s
        "${k[@]}" expose deploy/layout --port 80
        "${k[@]}" scale deploy/layout --replicas 20
        "${k[@]}" rollout status deploy/layout --timeout=600s
        "${k[@]}" set image deploy/layout web=nginx:1.28
        "${k[@]}" rollout status deploy/layout --timeout=600s
        "${k[@]}" get pods,rs,deploy,svc,endpoints,nodes,events -o wide
        "${k[@]}" delete svc/layout deploy/layout --wait --timeout=600s
    } >>"$1/work.log" 2>&1
}

profile "$work/embedded"
etcd_port=$((port + 1))
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$((port + 2))" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
sleep 2
profile "$work/etcd" "http://127.0.0.1:$etcd_port"
kill "$etcd_pid"

nm -S --defined-only "$ferry" >"$work/symbols"
python3 - "$work/symbols" ferry/symbol-order.txt "$work/embedded" "$work/etcd" <<'PY'
import collections, re, sys
symbols_file, out, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
size, address = {}, {}
for line in open(symbols_file):
    fields = line.split()
    if len(fields) == 4 and fields[2] in "tTwW":
        size[fields[3]] = max(size.get(fields[3], 0), int(fields[1], 16))
        address.setdefault(fields[3], int(fields[0], 16))
bits = {"apiserver": 1, "scheduler": 2, "controller-manager": 4}
defined = re.compile(r"^c?fn=\(\d+\) (.*)$")
def users(dump):
    found = collections.Counter()
    for run in runs:
        for component, bit in bits.items():
            for line in open(f"{run}/{component}.{dump}"):
                m = defined.match(line)
                if m:
                    name = re.sub(r"'\d+$", "", m.group(1))
                    if name in size:
                        found[name] |= bit
    return found
idle = users(1)
work = users(2)
work = collections.Counter({n: g for n, g in work.items() if n not in idle})
# All three, then apiserver + scheduler, apiserver, apiserver + controller-manager,
# controller-manager, controller-manager + scheduler, scheduler: each component's
# functions lie in a run of neighbouring groups.
with open(out, "w") as o:
    for tier in (idle, work):
        for group in (7, 3, 1, 5, 4, 6, 2):
            names = sorted((n for n, g in tier.items() if g == group), key=address.get)
            o.writelines(n + "\n" for n in names)
for component, bit in bits.items():
    kib = [sum(size[n] for n, g in tier.items() if g & bit) / 1024 for tier in (idle, work)]
    print(f"{component}: {kib[0]:.0f} KiB of functions run at idle, {kib[1]:.0f} more under work",
          file=sys.stderr)
PY
echo "wrote ferry/symbol-order.txt ($(wc -l <ferry/symbol-order.txt) functions)"
