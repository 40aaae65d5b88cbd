#!/usr/bin/env bash
# Mount throughput of dpustor-fsd (local: backend) next to the native directory and libfuse's
# passthrough example: fio jobs and a small-file workload on each target, then a table with
# ratios. See README.md. Needs root; runs in a private mount namespace of its own, so every
# mount it makes disappears with it.
set -euo pipefail

PROG=run_fio.sh
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
usage() {
  cat <<EOF
usage: $PROG BUILD_DIR [options]

Runs fio and a small-file workload on: the native directory, dpustor-fsd with the local:
backend (per --threads value, without and with --writeback) and libfuse's passthrough
example file system, all backed by directories of one file system.

options:
  --threads "N..."           dpustor-fsd --threads values, one target each (default: "2")
  --targets "T..."           subset and order of: native passthrough passthrough-wb fsd fsd-wb
                             (default: "native passthrough fsd fsd-wb")
  --size SIZE                fio file size (default: 1G)
  --runtime S                seconds per fio job after --ramp (default: 10)
  --ramp S                   fio ramp_time seconds (default: 2)
  --files N                  small-file workload: files created, stat'ed, unlinked (default: 20000)
  --backing tmpfs|DIR        backing file system: a private tmpfs (default) or directories
                             under DIR (its file system; reads may then hit the disk)
  --passthrough-hp-src FILE  passthrough_hp.cc from a libfuse source tree (its example/ folder,
                             with cxxopts.hpp beside it); default: passthrough_ll.c from
                             /usr/share/doc/libfuse3-dev/examples
  --passthrough-arg ARG      extra argument for the passthrough daemon (repeatable)
  --fsd-arg ARG              extra argument for dpustor-fsd (repeatable)
  --keep                     keep the work directory (logs, fio JSON) and print its path
  -h, --help                 this text

BUILD_DIR must hold src/fs/fsd/dpustor-fsd and bench/fsd/dpustor-bench-fsd-smallfiles:
  ninja -C BUILD_DIR dpustor-fsd dpustor-bench-fsd-smallfiles
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
ORIG_ARGS=("$@")
BUILD=$1
shift
THREADS="2"
TARGETS="native passthrough fsd fsd-wb"
SIZE=1G
RUNTIME=10
RAMP=2
FILES=20000
BACKING=tmpfs
HP_SRC=""
KEEP=0
PT_ARGS=()
FSD_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
  --threads) THREADS=${2:?}; shift 2 ;;
  --targets) TARGETS=${2:?}; shift 2 ;;
  --size) SIZE=${2:?}; shift 2 ;;
  --runtime) RUNTIME=${2:?}; shift 2 ;;
  --ramp) RAMP=${2:?}; shift 2 ;;
  --files) FILES=${2:?}; shift 2 ;;
  --backing) BACKING=${2:?}; shift 2 ;;
  --passthrough-hp-src) HP_SRC=${2:?}; shift 2 ;;
  --passthrough-arg) PT_ARGS+=("${2:?}"); shift 2 ;;
  --fsd-arg) FSD_ARGS+=("${2:?}"); shift 2 ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown argument: $1" ;;
  esac
done

[[ $EUID -eq 0 ]] || die "must run as root (FUSE mounts, tmpfs, a private mount namespace)"
for tool in fio python3 unshare gcc g++ pkg-config findmnt mountpoint; do
  command -v "$tool" >/dev/null || die "'$tool' not found (Debian: apt-get install fio python3 util-linux gcc g++ pkg-config)"
done
pkg-config --exists fuse3 || die "fuse3 development files missing (apt-get install libfuse3-dev)"
[[ -c /dev/fuse ]] || die "/dev/fuse missing (modprobe fuse)"
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "build directory '$1' not found"
FSD=$BUILD/src/fs/fsd/dpustor-fsd
SMALL=$BUILD/bench/fsd/dpustor-bench-fsd-smallfiles
for t in $TARGETS; do
  case "$t" in
  native | passthrough | passthrough-wb) ;;
  fsd | fsd-wb) [[ -x $FSD ]] || die "$FSD not built (ninja -C $BUILD dpustor-fsd)" ;;
  *) die "unknown target '$t' (native passthrough passthrough-wb fsd fsd-wb)" ;;
  esac
done
[[ -x $SMALL ]] || die "$SMALL not built (ninja -C $BUILD dpustor-bench-fsd-smallfiles)"
[[ -z $HP_SRC || -f $HP_SRC ]] || die "--passthrough-hp-src: no file '$HP_SRC'"
if [[ -n $HP_SRC && " $TARGETS " == *" passthrough-wb "* ]]; then
  die "passthrough-wb is passthrough_ll with -o writeback; passthrough_hp asks for the writeback cache on its own (use the 'passthrough' target)"
fi
[[ $BACKING == tmpfs || -d $BACKING ]] || die "--backing: '$BACKING' is neither tmpfs nor a directory"

# Everything below runs in a private mount namespace: mounts made here are invisible outside
# and vanish with the namespace even if this script is killed.
if [[ "${DPUSTOR_BENCH_FSD_IN_NS:-}" != 1 ]]; then
  exec env DPUSTOR_BENCH_FSD_IN_NS=1 unshare --mount --propagation private -- \
    "$0" "${ORIG_ARGS[@]}"
fi

# passthrough_ll keeps an O_PATH descriptor per inode the kernel knows: 20,000 files need more
# than the usual limits. Every daemon gets the largest limit root may set.
ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || ulimit -n "$(ulimit -Hn)" ||
  die "cannot raise the open-file limit (ulimit -n)"
if [[ " $TARGETS " == *" passthrough"* ]] && (($(ulimit -n) < FILES + 1024)); then
  echo "$PROG: the open-file limit ($(ulimit -n), hard) cannot hold passthrough_ll's $FILES inode descriptors; small-file workload lowered to $(($(ulimit -n) - 1024)) files for every target" >&2
  FILES=$(($(ulimit -n) - 1024))
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/dpustor-bench-fsd.XXXXXX")
MNT=$WORK/mnt
LOGS=$WORK/logs
RESULTS=$WORK/results
mkdir -p "$MNT" "$LOGS" "$RESULTS"
DAEMON_PID=""
BACK_ROOT=""
TMPFS_MOUNTED=0

stop_daemon() {
  local pid=$DAEMON_PID
  DAEMON_PID=""
  stop_pid "$pid" daemon
  if mountpoint -q "$MNT"; then
    umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
  fi
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_daemon
  if [[ $TMPFS_MOUNTED == 1 ]]; then umount -l "$BACK_ROOT" || true; fi
  if [[ $KEEP == 1 ]]; then
    echo "$PROG: work directory kept: $WORK" >&2
  else
    [[ -n $BACK_ROOT && $BACKING != tmpfs ]] && rm -rf "$BACK_ROOT"
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $BACKING == tmpfs ]]; then
  BACK_ROOT=$WORK/backing
  mkdir -p "$BACK_ROOT"
  mount -t tmpfs -o size=80%,mode=0755 dpustor-bench-fsd "$BACK_ROOT"
  TMPFS_MOUNTED=1
else
  BACK_ROOT=$(mktemp -d "$(cd "$BACKING" && pwd)/dpustor-bench-fsd.XXXXXX")
fi
BACK_FS=$(findmnt -rn -T "$BACK_ROOT" -o FSTYPE)

# libfuse's passthrough, compiled from the installed package's examples (or the given
# passthrough_hp.cc) into the build directory.
PT_BIN=""
PT_KIND=""
build_passthrough() {
  local out=$BUILD/bench/fsd/libfuse-examples
  mkdir -p "$out"
  if [[ -n $HP_SRC ]]; then
    PT_KIND=passthrough_hp
    PT_BIN=$out/passthrough_hp
    g++ -std=c++17 -O2 -Wall -I"$(dirname "$HP_SRC")" "$HP_SRC" -o "$PT_BIN" \
      $(pkg-config --cflags --libs fuse3) -pthread ||
      die "compiling $HP_SRC failed (it needs cxxopts.hpp from the same libfuse example/ folder)"
  else
    local src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
    [[ -f $src ]] || die "$src missing (apt-get install libfuse3-dev)"
    PT_KIND=passthrough_ll
    PT_BIN=$out/passthrough_ll
    gcc -O2 -Wall "$src" -o "$PT_BIN" $(pkg-config --cflags --libs fuse3) ||
      die "compiling $src failed"
  fi
}

wait_mount() { # name
  local log=$LOGS/$1.log
  for _ in $(seq 200); do
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
      tail -20 "$log" >&2 || true
      DAEMON_PID=""
      die "$1: the daemon exited before mounting (log above: $log)"
    fi
    if [[ $(findmnt -rn -M "$MNT" -o FSTYPE 2>/dev/null) == fuse* ]] && stat "$MNT" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  tail -20 "$log" >&2 || true
  die "$1: no FUSE mount on $MNT after 10 s (log above: $log)"
}

# Starts target $1 (backed by $2) and prints the directory the workloads run in.
start_target() { # name kind threads backing_dir
  local name=$1 kind=$2 threads=$3 dir=$4
  case "$kind" in
  native)
    echo "$dir"
    return
    ;;
  fsd | fsd-wb)
    local extra=()
    [[ $kind == fsd-wb ]] && extra+=(--writeback)
    "$FSD" --transport fuse --mount "$MNT" --backend "local:$dir" --threads "$threads" \
      "${extra[@]}" --control-socket "$WORK/fsd.sock" "${FSD_ARGS[@]}" \
      >"$LOGS/$name.log" 2>&1 &
    DAEMON_PID=$!
    ;;
  passthrough | passthrough-wb)
    if [[ $PT_KIND == passthrough_hp ]]; then
      "$PT_BIN" --foreground "${PT_ARGS[@]}" "$dir" "$MNT" \
        >"$LOGS/$name.log" 2>&1 &
    else
      local opts="source=$dir"
      [[ $kind == passthrough-wb ]] && opts+=",writeback"
      "$PT_BIN" -f -o "$opts" "${PT_ARGS[@]}" "$MNT" >"$LOGS/$name.log" 2>&1 &
    fi
    DAEMON_PID=$!
    ;;
  esac
  wait_mount "$name" >&2
  echo "$MNT"
}

# fio jobs, one after the other (stonewall); buffered I/O (direct=0), psync. "j16" jobs run
# 16 threads on the same file, which is how buffered I/O gets 16 requests in flight (libaio
# is synchronous without O_DIRECT).
write_jobfile() {
  cat >"$WORK/jobs.fio" <<EOF
[global]
filename=\${FIO_FILE}
size=$SIZE
ioengine=psync
direct=0
invalidate=1
time_based=1
runtime=$RUNTIME
ramp_time=$RAMP
group_reporting=1

[seqwrite-1M]
stonewall
rw=write
bs=1M
end_fsync=1

[seqread-1M]
stonewall
rw=read
bs=1M

[randread-4k-j1]
stonewall
rw=randread
bs=4k

[randwrite-4k-j1]
stonewall
rw=randwrite
bs=4k

[randread-4k-j16]
stonewall
rw=randread
bs=4k
numjobs=16

[randwrite-4k-j16]
stonewall
rw=randwrite
bs=4k
numjobs=16
EOF
}

run_target() { # name kind threads
  local name=$1 kind=$2 threads=$3
  local back=$BACK_ROOT/$name
  mkdir -p "$back"
  echo "== $name: starting" >&2
  local dir
  dir=$(start_target "$name" "$kind" "$threads" "$back")
  # Lay the file out once, outside the measurements.
  FIO_FILE=$dir/fio.dat fio --name=layout --filename="$dir/fio.dat" --size="$SIZE" --rw=write \
    --bs=1M --end_fsync=1 --output=/dev/null
  echo "== $name: fio ($(date +%T))" >&2
  FIO_FILE=$dir/fio.dat fio --output-format=json --output="$RESULTS/$name.fio.json" "$WORK/jobs.fio" ||
    die "$name: fio failed (see $RESULTS/$name.fio.json)"
  rm -f "$dir/fio.dat"
  echo "== $name: small files ($(date +%T))" >&2
  "$SMALL" "$dir" --files "$FILES" --size 4096 | tee "$RESULTS/$name.small.txt" >&2 ||
    die "$name: small-file workload failed"
  stop_daemon
  rm -rf "$back"
}

LABELS=()
need_pt=0
for t in $TARGETS; do [[ $t == passthrough* ]] && need_pt=1; done
[[ $need_pt == 1 ]] && build_passthrough
write_jobfile

echo "machine: $(nproc) CPUs, $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "backing: $BACK_FS ($BACK_ROOT); fio size $SIZE, ramp ${RAMP}s, runtime ${RUNTIME}s; small files: $FILES x 4 KiB" >&2
for t in $TARGETS; do
  case "$t" in
  native)
    run_target native native 0
    LABELS+=("native")
    ;;
  passthrough | passthrough-wb)
    run_target "$t" "$t" 0
    LABELS+=("$t")
    ;;
  fsd | fsd-wb)
    for n in $THREADS; do
      run_target "$t-t$n" "$t" "$n"
      LABELS+=("$t-t$n")
    done
    ;;
  esac
done

echo >&2
python3 - "$RESULTS" "$PT_KIND" "$BACK_FS" "${LABELS[@]}" <<'EOF'
import json, re, sys

results, pt_kind, back_fs, labels = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
rows = []  # (workload, unit, {label: value})
fio_jobs = [
    ("seqwrite-1M", "write", "MiB/s"), ("seqread-1M", "read", "MiB/s"),
    ("randread-4k-j1", "read", "IOPS"), ("randwrite-4k-j1", "write", "IOPS"),
    ("randread-4k-j16", "read", "IOPS"), ("randwrite-4k-j16", "write", "IOPS"),
]
fio = {}
for label in labels:
    with open(f"{results}/{label}.fio.json") as f:
        fio[label] = {j["jobname"]: j for j in json.load(f)["jobs"]}
for job, rw, unit in fio_jobs:
    vals = {}
    for label in labels:
        j = fio[label].get(job)
        if j is None:
            continue
        vals[label] = j[rw]["bw_bytes"] / 2**20 if unit == "MiB/s" else j[rw]["iops"]
    rows.append((job, unit, vals))
small = {}
for label in labels:
    with open(f"{results}/{label}.small.txt") as f:
        m = re.search(r"RESULT create=(\S+) stat=(\S+) unlink=(\S+)", f.read())
        small[label] = [float(x) for x in m.groups()]
for i, phase in enumerate(["create+write 4k", "stat", "unlink"]):
    rows.append((f"small files: {phase}", "ops/s", {l: small[l][i] for l in labels}))

def fmt(v):
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")

def names(label):
    return label.replace("passthrough", pt_kind or "passthrough")

print(f"Throughput (backing file system: {back_fs})\n")
print("| workload | unit | " + " | ".join(names(l) for l in labels) + " |")
print("|---|---|" + "---|" * len(labels))
for job, unit, vals in rows:
    print(f"| {job} | {unit} | " + " | ".join(fmt(vals.get(l)) for l in labels) + " |")

def ratio_table(title, base_of):
    cols = [l for l in labels if base_of(l) and base_of(l) != l]
    if not cols:
        return
    print(f"\n{title}\n")
    print("| workload | " + " | ".join(f"{names(l)} / {names(base_of(l))}" for l in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for job, unit, vals in rows:
        cells = []
        for l in cols:
            a, b = vals.get(l), vals.get(base_of(l))
            cells.append("-" if not a or not b else f"{a / b:.2f}")
        print(f"| {job} | " + " | ".join(cells) + " |")

ratio_table("Ratio vs native (higher is better, 1.00 = as fast as native)",
            lambda l: "native" if "native" in labels else None)
def pt_base(l):
    if l.startswith("fsd-wb") and "passthrough-wb" in labels:
        return "passthrough-wb"
    if l.startswith("fsd") and "passthrough" in labels:
        return "passthrough"
    return None
ratio_table("Ratio vs libfuse passthrough (higher is better)", pt_base)
EOF
