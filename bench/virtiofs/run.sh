#!/usr/bin/env bash
# dpustor-fsd's vhost-user transport next to QEMU's C virtiofsd, both serving the same
# directory, driven by dpustor-vufs-bench (no VM): 4 KiB random reads at several queue
# depths, 1 MiB sequential reads and writes, lookup+getattr, with 1 and 4 request queues.
# Prints a table with ratios (dpustor / virtiofsd). See README.md. Needs root (virtiofsd's
# namespace sandbox). Every daemon is started here and stopped by its PID.
set -euo pipefail

PROG=run.sh
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
usage() {
  cat <<EOF
usage: $PROG BUILD_DIR [options]

options:
  --seconds S           measured seconds per run (default: 5)
  --file-size BYTES     test file size (default: 268435456)
  --queues "N..."       request queue counts (default: "1 4")
  --servers "S..."      subset and order of: fsd virtiofsd (default: "fsd virtiofsd")
  --dir DIR             directory both servers share (default: a fresh one under \$TMPDIR)
  --virtiofsd PATH      virtiofsd binary (default: /usr/lib/qemu/virtiofsd)
  --virtiofsd-arg ARG   extra argument for virtiofsd (repeatable), e.g. --thread-pool-size=64
  --fsd-arg ARG         extra argument for dpustor-fsd (repeatable)
  --keep                keep the work directory (logs, JSON results) and print its path
  -h, --help            this text

BUILD_DIR must hold src/fs/fsd/dpustor-fsd and src/fs/vufs/dpustor-vufs-bench:
  ninja -C BUILD_DIR dpustor-fsd dpustor-vufs-bench
EOF
}

[[ $# -ge 1 ]] || {
  usage >&2
  exit 2
}
case "$1" in -h | --help)
  usage
  exit 0
  ;;
esac
BUILD=$1
shift
SECONDS_PER_RUN=5
FILE_SIZE=268435456
QUEUES="1 4"
SERVERS="fsd virtiofsd"
DIR=""
VIRTIOFSD=/usr/lib/qemu/virtiofsd
VFS_ARGS=()
FSD_ARGS=()
KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
  --seconds) SECONDS_PER_RUN=${2:?}; shift 2 ;;
  --file-size) FILE_SIZE=${2:?}; shift 2 ;;
  --queues) QUEUES=${2:?}; shift 2 ;;
  --servers) SERVERS=${2:?}; shift 2 ;;
  --dir) DIR=${2:?}; shift 2 ;;
  --virtiofsd) VIRTIOFSD=${2:?}; shift 2 ;;
  --virtiofsd-arg) VFS_ARGS+=("${2:?}"); shift 2 ;;
  --fsd-arg) FSD_ARGS+=("${2:?}"); shift 2 ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) die "unknown option '$1' (see --help)" ;;
  esac
done

FSD=$BUILD/src/fs/fsd/dpustor-fsd
BENCH=$BUILD/src/fs/vufs/dpustor-vufs-bench
[[ -x $BENCH ]] || die "$BENCH missing: ninja -C $BUILD dpustor-vufs-bench"
for s in $SERVERS; do
  case "$s" in
  fsd)
    [[ -x $FSD ]] || die "$FSD missing: ninja -C $BUILD dpustor-fsd"
    "$FSD" --help 2>&1 | grep -q -- ' --socket' || die "$FSD has no vhost-user transport (--socket)"
    ;;
  virtiofsd) [[ -x $VIRTIOFSD ]] || die "$VIRTIOFSD missing (Debian: qemu-system-common)" ;;
  *) die "unknown server '$s' (known: fsd virtiofsd)" ;;
  esac
done
[[ $SECONDS_PER_RUN =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--seconds must be a number"
[[ $FILE_SIZE =~ ^[0-9]+$ ]] || die "--file-size must be a byte count"
for q in $QUEUES; do [[ $q =~ ^[1-9][0-9]*$ ]] || die "--queues: '$q' is not a positive number"; done
[[ $(id -u) -eq 0 ]] || die "needs root (virtiofsd's sandbox; run with sudo)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vufs-bench.XXXXXX")
if [[ -z $DIR ]]; then
  DIR=$WORK/share
  mkdir -p "$DIR"
fi
[[ -d $DIR ]] || die "--dir $DIR is not a directory"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
SERVER_PID=""

stop_server() {
  stop_pid "$SERVER_PID" server
  SERVER_PID=""
}
cleanup() {
  stop_server
  if [[ $KEEP -eq 1 ]]; then
    echo "$PROG: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server SERVER QUEUES SOCKET LOG: starts it in the background, waits for its socket.
start_server() {
  local server=$1 queues=$2 sock=$3 log=$4
  rm -f "$sock"
  if [[ $server == fsd ]]; then
    "$FSD" --transport vhost-user --socket "$sock" --tag bench --backend "local:$DIR" \
      --request-queues "$queues" "${FSD_ARGS[@]}" >"$log" 2>&1 &
  else
    "$VIRTIOFSD" -f --socket-path="$sock" -o source="$DIR" -o cache=auto "${VFS_ARGS[@]}" \
      >"$log" 2>&1 &
  fi
  SERVER_PID=$!
  for _ in $(seq 200); do
    [[ -S $sock ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  die "$server did not create $sock"
}

# Workloads: name depth file.
WORKLOADS=(
  "randread4k 1 vufs-read.dat"
  "randread4k 16 vufs-read.dat"
  "randread4k 64 vufs-read.dat"
  "seqread1m 4 vufs-read.dat"
  "seqwrite1m 4 vufs-write.dat"
  "lookup_getattr 1 vufs-read.dat"
  "lookup_getattr 16 vufs-read.dat"
)

echo "$PROG: directory $DIR, file size $FILE_SIZE, $SECONDS_PER_RUN s per run" >&2
for server in $SERVERS; do
  for queues in $QUEUES; do
    for w in "${WORKLOADS[@]}"; do
      read -r workload depth file <<<"$w"
      tag="$server q$queues $workload d$depth"
      sock=$WORK/$server.sock
      log=$WORK/$server-q$queues-$workload-d$depth.log
      start_server "$server" "$queues" "$sock" "$log"
      set +e
      out=$("$BENCH" --socket "$sock" --queues "$queues" --depth "$depth" --workload "$workload" \
        --file "$file" --file-size "$FILE_SIZE" --seconds "$SECONDS_PER_RUN" \
        --server-pid "$SERVER_PID" --json 2>"$WORK/bench.err")
      rc=$?
      set -e
      stop_server
      if [[ $rc -eq 0 ]]; then
        echo "$PROG: $tag: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f ops/s, %.0f MiB/s" % (r["ops_per_sec"], r["mib_per_sec"]))' "$out")" >&2
        printf '{"server":"%s","result":%s}\n' "$server" "$out" >>"$RESULTS"
      else
        err=$(tr '\n' ' ' <"$WORK/bench.err")
        echo "$PROG: $tag: failed: $err" >&2
        python3 -c 'import json,sys; print(json.dumps({"server":sys.argv[1],"queues":int(sys.argv[2]),"workload":sys.argv[3],"depth":int(sys.argv[4]),"error":sys.argv[5]}))' \
          "$server" "$queues" "$workload" "$depth" "$err" >>"$RESULTS"
      fi
    done
  done
done

python3 - "$RESULTS" <<'PYEOF'
import json, sys

rows = {}
errors = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "error" in r:
        errors[(r["server"], r["queues"], r["workload"], r["depth"])] = r["error"]
        continue
    res = r["result"]
    rows[(r["server"], res["queues"], res["workload"], res["depth"])] = res

keys = sorted({k[1:] for k in list(rows) + list(errors)},
              key=lambda k: (k[0], ["randread4k", "seqread1m", "seqwrite1m", "lookup_getattr"].index(k[1]), k[2]))

def metric(res):
    return res["mib_per_sec"] if res["workload"].startswith("seq") else res["ops_per_sec"]

def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"

def cell(server, key, f):
    res = rows.get((server,) + key)
    if res is None:
        return "n/a" if (server,) + key in errors else "-"
    return f(res)

def ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"

print()
print("| queues | workload | depth | unit | dpustor-fsd | virtiofsd | ratio | p50 us fsd / vfsd | p99 us fsd / vfsd | server cpu us/op fsd / vfsd | client cpu us/op fsd / vfsd |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for key in keys:
    q, wl, d = key
    f, v = rows.get(("fsd",) + key), rows.get(("virtiofsd",) + key)
    unit = "MiB/s" if wl.startswith("seq") else "ops/s"
    mf, mv = (metric(f) if f else None), (metric(v) if v else None)
    lat = lambda r, p: fmt(r["latency_us"][p], 1) if r else "-"
    cpu = lambda r, k: fmt(r[k], 2) if r and r[k] is not None else "-"
    print(f"| {q} | {wl} | {d} | {unit} | {cell('fsd', key, lambda r: fmt(metric(r)))} | "
          f"{cell('virtiofsd', key, lambda r: fmt(metric(r)))} | {ratio(mf, mv)} | "
          f"{lat(f, 'p50')} / {lat(v, 'p50')} | {lat(f, 'p99')} / {lat(v, 'p99')} | "
          f"{cpu(f, 'server_cpu_us_per_op')} / {cpu(v, 'server_cpu_us_per_op')} | "
          f"{cpu(f, 'client_cpu_us_per_op')} / {cpu(v, 'client_cpu_us_per_op')} |")
if errors:
    print()
    seen = {}
    for (s, q, wl, d), e in sorted(errors.items()):
        seen.setdefault((s, q, e.strip()), []).append(f"{wl} d{d}")
    for (s, q, e), runs in seen.items():
        print(f"- n/a: {s} with {q} request queue(s) ({', '.join(runs)}): {e}")
print()
print("ratio: dpustor-fsd / virtiofsd on the unit's metric (above 1: dpustor-fsd is faster); "
      "cpu: CPU time per operation (server: the daemon and its children, from /proc)")
PYEOF
