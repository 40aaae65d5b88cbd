#!/usr/bin/env bash
# Copying a large file through dpustor-fsd's NFS backend (a FUSE mount of an NFSv3 export)
# next to libnfs's own nfs-cp on the same export, and the kernel's NFSv3 client. The server
# is NFS-Ganesha (FSAL_VFS) with its rpcbind, all inside a private network + mount namespace
# this script creates: loopback only, nothing visible outside, nothing left behind.
# See README.md. Needs root.
set -euo pipefail

PROG=run_nfs.sh
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
usage() {
  cat <<EOF
usage: $PROG BUILD_DIR [options]

Copies a file to and from an NFSv3 export of NFS-Ganesha: through a dpustor-fsd mount with
the nfs:// backend (dd bs=1M), with libnfs's nfs-cp, and with the kernel NFS client
(mount -t nfs, if mount.nfs is installed). Each read starts from a cold client cache (a
fresh mount; nfs-cp has none).

options:
  --size MIB             file size in MiB (default: 1024)
  --repeat N             runs of each copy; the median is reported (default: 3)
  --threads N            dpustor-fsd --threads (default: the daemon's default)
  --backing tmpfs|DIR    what Ganesha exports: a private tmpfs (default) or a new directory
                         under DIR (then the server's disk is part of the numbers)
  --clients "C..."       subset and order of: dpustor-fsd nfs-cp kernel-nfs
                         (default: all three; kernel-nfs only if mount.nfs is installed)
  --fsd-arg ARG          extra argument for dpustor-fsd (repeatable)
  --keep                 keep the work directory (configs, logs) and print its path
  -h, --help             this text

BUILD_DIR must hold src/fs/fsd/dpustor-fsd built with the nfs backend:
  ninja -C BUILD_DIR dpustor-fsd
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
SIZE_MIB=1024
REPEAT=3
THREADS=""
BACKING=tmpfs
CLIENTS="dpustor-fsd nfs-cp kernel-nfs"
KEEP=0
FSD_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
  --size) SIZE_MIB=${2:?}; shift 2 ;;
  --repeat) REPEAT=${2:?}; shift 2 ;;
  --threads) THREADS=${2:?}; shift 2 ;;
  --backing) BACKING=${2:?}; shift 2 ;;
  --clients) CLIENTS=${2:?}; shift 2 ;;
  --fsd-arg) FSD_ARGS+=("${2:?}"); shift 2 ;;
  --keep) KEEP=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "--size must be a number of MiB"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat must be a positive number"

[[ $EUID -eq 0 ]] || die "must run as root (network + mount namespace, rpcbind on port 111, FUSE mounts)"
for tool in unshare ip rpcbind ganesha.nfsd nfs-cp nfs-ls dd python3 findmnt mountpoint; do
  command -v "$tool" >/dev/null ||
    die "'$tool' not found (Debian: apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2 python3)"
done
GANESHA_FSAL_DIR=$(dirname "$(dpkg -L nfs-ganesha-vfs 2>/dev/null | grep 'libfsalvfs.so$' | head -1)" 2>/dev/null) || true
[[ -n $GANESHA_FSAL_DIR && -f $GANESHA_FSAL_DIR/libfsalvfs.so ]] ||
  die "Ganesha's VFS FSAL (libfsalvfs.so) not found (apt-get install nfs-ganesha-vfs)"
[[ -c /dev/fuse ]] || die "/dev/fuse missing (modprobe fuse)"
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "build directory '$1' not found"
FSD=$BUILD/src/fs/fsd/dpustor-fsd
for c in $CLIENTS; do
  case "$c" in
  dpustor-fsd) [[ -x $FSD ]] || die "$FSD not built (ninja -C $BUILD dpustor-fsd)" ;;
  nfs-cp) ;;
  kernel-nfs)
    if ! command -v mount.nfs >/dev/null; then
      [[ -n ${DPUSTOR_BENCH_FSD_IN_NS:-} ]] || echo "$PROG: mount.nfs not installed (nfs-common): skipping the kernel NFS client" >&2
      CLIENTS=${CLIENTS//kernel-nfs/}
    elif ! grep -qw nfs /proc/filesystems && ! modprobe nfs 2>/dev/null; then
      [[ -n ${DPUSTOR_BENCH_FSD_IN_NS:-} ]] || echo "$PROG: this kernel has no NFS client (no 'nfs' in /proc/filesystems): skipping kernel-nfs" >&2
      CLIENTS=${CLIENTS//kernel-nfs/}
    fi
    ;;
  *) die "unknown client '$c' (dpustor-fsd nfs-cp kernel-nfs)" ;;
  esac
done
[[ $BACKING == tmpfs || -d $BACKING ]] || die "--backing: '$BACKING' is neither tmpfs nor a directory"

# Everything below runs in private network and mount namespaces: rpcbind's port 111,
# Ganesha's ports and every mount are invisible outside and vanish with this process.
if [[ "${DPUSTOR_BENCH_FSD_IN_NS:-}" != 1 ]]; then
  exec env DPUSTOR_BENCH_FSD_IN_NS=1 unshare --net --mount --propagation private -- \
    "$0" "${ORIG_ARGS[@]}"
fi
ip link set lo up
mount -t tmpfs -o mode=0755 dpustor-bench-run /run # rpcbind's socket, Ganesha's pid file

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/dpustor-bench-nfs.XXXXXX")
MNT=$WORK/mnt
mkdir -p "$MNT" "$WORK/logs" "$WORK/local" "$WORK/export" "$WORK/recovery"
EXPORT_DIR=""
NFS_PORT=2049
MOUNT_PORT=20048
URL_QUERY="version=3&nfsport=$NFS_PORT&mountport=$MOUNT_PORT"
NFS_URL="nfs://127.0.0.1/export"
RPCBIND_PID=""
GANESHA_PID=""
FSD_PID=""

unmount_mnt() {
  if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
}

stop_fsd() {
  stop_pid "$FSD_PID" dpustor-fsd
  FSD_PID=""
  unmount_mnt
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_fsd
  unmount_mnt
  stop_pid "$GANESHA_PID" ganesha.nfsd
  stop_pid "$RPCBIND_PID" rpcbind
  mountpoint -q "$WORK/export" && umount -l "$WORK/export"
  mountpoint -q "$WORK/local" && umount -l "$WORK/local"
  umount -l /run 2>/dev/null || true
  if [[ $KEEP == 1 ]]; then
    echo "$PROG: work directory kept: $WORK" >&2
  else
    [[ -n $EXPORT_DIR && $BACKING != tmpfs ]] && rm -rf "$EXPORT_DIR"
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The exported directory and the local side of the copies.
if [[ $BACKING == tmpfs ]]; then
  mount -t tmpfs -o size=$((SIZE_MIB * (REPEAT + 3) + 256))m,mode=0755 dpustor-bench-export "$WORK/export"
  EXPORT_DIR=$WORK/export
else
  EXPORT_DIR=$(mktemp -d "$(cd "$BACKING" && pwd)/dpustor-bench-nfs.XXXXXX")
fi
mount -t tmpfs -o size=$((SIZE_MIB * 2 + 256))m,mode=0755 dpustor-bench-local "$WORK/local"
EXPORT_FS=$(findmnt -rn -T "$EXPORT_DIR" -o FSTYPE)

# --- rpcbind and Ganesha -------------------------------------------------------------------
rpcbind -f >"$WORK/logs/rpcbind.log" 2>&1 &
RPCBIND_PID=$!
for _ in $(seq 100); do
  [[ -S /run/rpcbind.sock ]] && break
  kill -0 "$RPCBIND_PID" 2>/dev/null || die "rpcbind exited: $(cat "$WORK/logs/rpcbind.log")"
  sleep 0.05
done
[[ -S /run/rpcbind.sock ]] || die "rpcbind did not create /run/rpcbind.sock"

cat >"$WORK/ganesha.conf" <<EOF
NFS_CORE_PARAM {
  Protocols = 3;
  NFS_Port = $NFS_PORT;
  MNT_Port = $MOUNT_PORT;
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Mount_Path_Pseudo = true;
  Plugins_Dir = "$GANESHA_FSAL_DIR";
}
NFSV4 {
  Graceless = true;
  RecoveryRoot = "$WORK/recovery";
}
EXPORT {
  Export_Id = 1;
  Path = "$EXPORT_DIR";
  Pseudo = /export;
  Protocols = 3;
  Transports = TCP;
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  FSAL { Name = VFS; }
}
LOG {
  Default_Log_Level = EVENT;
}
EOF
mkdir -p /run/ganesha
ganesha.nfsd -F -f "$WORK/ganesha.conf" -L "$WORK/logs/ganesha.log" -p /run/ganesha/ganesha.pid \
  -N NIV_EVENT >"$WORK/logs/ganesha.stdout" 2>&1 &
GANESHA_PID=$!
ready=0
for _ in $(seq 300); do
  kill -0 "$GANESHA_PID" 2>/dev/null || {
    tail -20 "$WORK/logs/ganesha.log" >&2 || true
    GANESHA_PID=""
    die "ganesha.nfsd exited (log above)"
  }
  if nfs-ls "$NFS_URL?$URL_QUERY" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ $ready == 1 ]] || {
  tail -20 "$WORK/logs/ganesha.log" >&2 || true
  die "Ganesha does not answer on 127.0.0.1:$NFS_PORT after 30 s (log above)"
}

# --- the copies ------------------------------------------------------------------------------
SRC=$WORK/local/source
echo "machine: $(nproc) CPUs, $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "export: $EXPORT_FS ($EXPORT_DIR) as $NFS_URL?$URL_QUERY; file ${SIZE_MIB} MiB; local side tmpfs" >&2
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$SRC"

now() { date +%s.%N; }
RESULTS=$WORK/results.txt
: >"$RESULTS"
record() { # client direction seconds
  echo "$1 $2 $3" >>"$RESULTS"
  printf '  %-10s %-8s %7.2f s  %8.1f MiB/s\n' "$1" "$2" "$3" \
    "$(python3 -c "print($SIZE_MIB / $3)")" >&2
}
elapsed() { python3 -c "print(f'{$2 - $1:.6f}')"; }
check_size() { # file
  local got
  got=$(stat -c %s "$1")
  [[ $got == $((SIZE_MIB << 20)) ]] || die "$1 has $got bytes, expected $((SIZE_MIB << 20))"
}

start_fsd() {
  local extra=()
  [[ -n $THREADS ]] && extra+=(--threads "$THREADS")
  "$FSD" --transport fuse --mount "$MNT" --backend "$NFS_URL?$URL_QUERY" "${extra[@]}" \
    --control-socket "$WORK/fsd.sock" "${FSD_ARGS[@]}" >>"$WORK/logs/fsd.log" 2>&1 &
  FSD_PID=$!
  for _ in $(seq 200); do
    kill -0 "$FSD_PID" 2>/dev/null || {
      tail -20 "$WORK/logs/fsd.log" >&2 || true
      FSD_PID=""
      die "dpustor-fsd exited before mounting (log above)"
    }
    if [[ $(findmnt -rn -M "$MNT" -o FSTYPE 2>/dev/null) == fuse* ]] && stat "$MNT" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  die "dpustor-fsd: no FUSE mount on $MNT after 10 s (log: $WORK/logs/fsd.log)"
}

mount_kernel() {
  mount -t nfs -o "vers=3,proto=tcp,port=$NFS_PORT,mountport=$MOUNT_PORT,mountproto=tcp,nolock" \
    127.0.0.1:/export "$MNT" || die "kernel NFS mount failed"
}

run_fsd() {
  # Write through one mount, read back through a fresh one (cold page cache).
  start_fsd
  t0=$(now)
  dd if="$SRC" of="$MNT/fsd.dat" bs=1M conv=fsync status=none || die "dd to the dpustor-fsd mount failed"
  t1=$(now)
  stop_fsd
  record dpustor-fsd write "$(elapsed "$t0" "$t1")"
  check_size "$EXPORT_DIR/fsd.dat"
  start_fsd
  t0=$(now)
  dd if="$MNT/fsd.dat" of="$WORK/local/copy" bs=1M status=none || die "dd from the dpustor-fsd mount failed"
  check_size "$WORK/local/copy"
  rm -f "$WORK/local/copy"
  t1=$(now)
  rm -f "$MNT/fsd.dat"
  stop_fsd
  record dpustor-fsd read "$(elapsed "$t0" "$t1")"
}

run_nfs_cp() {
  # A new name per run: files removed behind Ganesha's back stay in its cache for a while,
  # and libnfs-utils has no nfs-rm.
  local name=nfscp.$1.dat
  t0=$(now)
  nfs-cp "$SRC" "$NFS_URL/$name?$URL_QUERY" >/dev/null || die "nfs-cp upload failed"
  t1=$(now)
  record nfs-cp write "$(elapsed "$t0" "$t1")"
  check_size "$EXPORT_DIR/$name"
  t0=$(now)
  nfs-cp "$NFS_URL/$name?$URL_QUERY" "$WORK/local/copy" >/dev/null || die "nfs-cp download failed"
  t1=$(now)
  check_size "$WORK/local/copy"
  rm -f "$EXPORT_DIR/$name" "$WORK/local/copy"
  record nfs-cp read "$(elapsed "$t0" "$t1")"
}

run_kernel() {
  mount_kernel
  t0=$(now)
  dd if="$SRC" of="$MNT/kernel.dat" bs=1M conv=fsync status=none || die "dd to the kernel NFS mount failed"
  t1=$(now)
  umount "$MNT"
  record kernel-nfs write "$(elapsed "$t0" "$t1")"
  check_size "$EXPORT_DIR/kernel.dat"
  mount_kernel
  t0=$(now)
  dd if="$MNT/kernel.dat" of="$WORK/local/copy" bs=1M status=none || die "dd from the kernel NFS mount failed"
  check_size "$WORK/local/copy"
  rm -f "$WORK/local/copy"
  t1=$(now)
  rm -f "$MNT/kernel.dat"
  umount "$MNT"
  record kernel-nfs read "$(elapsed "$t0" "$t1")"
}

for run in $(seq "$REPEAT"); do
  echo "== run $run/$REPEAT" >&2
  for c in $CLIENTS; do
    case "$c" in
    dpustor-fsd) run_fsd ;;
    nfs-cp) run_nfs_cp "$run" ;;
    kernel-nfs) run_kernel ;;
    esac
  done
done

echo >&2
python3 - "$RESULTS" "$SIZE_MIB" "$REPEAT" "$EXPORT_FS" <<'EOF'
import statistics, sys
path, size, repeat, export_fs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = {}
for line in open(path):
    client, direction, seconds = line.split()
    runs.setdefault((client, direction), []).append(size / float(seconds))
clients = [c for c in ("dpustor-fsd", "nfs-cp", "kernel-nfs") if (c, "write") in runs]
med = {k: statistics.median(v) for k, v in runs.items()}
print(f"{size:.0f} MiB file, NFSv3 to Ganesha on loopback (export on {export_fs}); "
      f"MiB/s, median of {repeat} (min-max)\n")
print("| client | write (local -> NFS) | read (NFS -> local) |")
print("|---|---|---|")
for c in clients:
    cells = []
    for d in ("write", "read"):
        v = runs[(c, d)]
        cells.append(f"{med[(c, d)]:.0f} ({min(v):.0f}-{max(v):.0f})")
    print(f"| {c} | " + " | ".join(cells) + " |")
others = [c for c in clients if c != "dpustor-fsd"] if "dpustor-fsd" in clients else []
if others:
    print("\n| ratio (higher: dpustor-fsd faster) | write | read |")
    print("|---|---|---|")
for other in others:
    print(f"| dpustor-fsd / {other} | " + " | ".join(
        f"{med[('dpustor-fsd', d)] / med[(other, d)]:.2f}" for d in ("write", "read")) + " |")
EOF
