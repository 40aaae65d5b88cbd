#!/usr/bin/env bash
# Installs what is needed, builds, and runs the local lab on this machine: a single-node
# Ceph, dpustor-manager, two SNAP simulators (SNAP-4 and SNAP 3.x dialects) each with a DPU
# agent, the Ceph agent, all on 127.0.0.1, and a file-system share mounted through
# dpustor-fsd. It prints what to run to look at it and stays in the foreground; Ctrl-C
# stops everything it started, by PID.
#   scripts/lab.sh [--dir DIR] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

lab_dir="$root/.lab"
build=1
while (($#)); do
  case "$1" in
    --dir) lab_dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "usage: scripts/lab.sh [--dir DIR] [--no-build]" >&2; exit 2 ;;
  esac
done

agent_port=${DPUSTOR_AGENT_PORT:-7800}
http_port=${DPUSTOR_HTTP_PORT:-7880}
bin="$root/build/src"

if [ "$build" -eq 1 ]; then
  scripts/install-deps.sh
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j "$(nproc)"
fi

mkdir -p "$lab_dir"
pids=()
names=()
stop_all() {
  trap - INT TERM EXIT
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "lab: stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM  # Ctrl-C: stop, and do not report the daemons exiting

# start NAME CMD...: runs CMD in the background with its output in the lab dir.
start() {
  local name=$1
  shift
  "$@" >"$lab_dir/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      echo "lab: $what did not come up; see $lab_dir" >&2
      exit 1
    fi
    sleep 0.2
  done
}

echo "lab: starting Ceph (about 10 s)"
start ceph bash scripts/lab/ceph.sh "$lab_dir/ceph"
wait_for 120 "Ceph" test -f "$lab_dir/ceph/ready"
# shellcheck disable=SC1091
. "$lab_dir/ceph/env"
ceph_args=(--conf "$CEPH_CONF" --keyring "$CEPH_KEYRING")

[ -f "$lab_dir/token" ] || head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$lab_dir/token"

start manager "$bin/manager/dpustor-manager" --listen "127.0.0.1:$agent_port" \
  --http "127.0.0.1:$http_port" --db "$lab_dir/manager.db" --token-file "$lab_dir/token"
wait_for 10 "the manager" curl -sf "http://127.0.0.1:$http_port/healthz"

start snap-sim-bf3 "$bin/sim/dpustor-snap-sim" --socket "$lab_dir/bf3-snap.sock" \
  --dialect snap4 --pfs 2 --vfs 4 --virtio-fs
start snap-sim-bf2 "$bin/sim/dpustor-snap-sim" --socket "$lab_dir/bf2-snap.sock" \
  --dialect snap3 --pfs 1 --vfs 2
wait_for 10 "the SNAP simulators" test -S "$lab_dir/bf2-snap.sock" -a -S "$lab_dir/bf3-snap.sock"

# bf2-0's SNAP has no virtio-fs: its file shares go to a dpustor-fsd that starts empty and
# takes shares from the agent (vhost-user sockets in $lab_dir/vhost, one per share).
mkdir -p "$lab_dir/vhost"
start fsd-bf2 "$bin/fs/fsd/dpustor-fsd" --control-socket "$lab_dir/bf2-fsd.sock"
wait_for 10 "dpustor-fsd for bf2-0" test -S "$lab_dir/bf2-fsd.sock"

start dpu-agent-bf3 "$bin/agent/dpu/dpustor-dpu-agent" --manager "127.0.0.1:$agent_port" \
  --name bf3-0 --host server-0 --snap-socket "$lab_dir/bf3-snap.sock" --token-file "$lab_dir/token"
start dpu-agent-bf2 "$bin/agent/dpu/dpustor-dpu-agent" --manager "127.0.0.1:$agent_port" \
  --name bf2-0 --host server-1 --snap-socket "$lab_dir/bf2-snap.sock" --token-file "$lab_dir/token" \
  --fsd-socket "$lab_dir/bf2-fsd.sock" --fsd-vhost-dir "$lab_dir/vhost"
start ceph-agent "$bin/agent/ceph/dpustor-ceph-agent" --manager "127.0.0.1:$agent_port" \
  --name ceph-lab --ceph-conf "$CEPH_CONF" --keyring "$CEPH_KEYRING" --user admin \
  --token-file "$lab_dir/token"

# A mounted share: dpustor-fsd serving a directory through its FUSE engine (the same engine
# that serves virtio-fs queues), with its control socket for counters.
mkdir -p "$lab_dir/share-data" "$lab_dir/share"
start fsd "$bin/fs/fsd/dpustor-fsd" --transport fuse --name lab-share --mount "$lab_dir/share" \
  --backend "local:$lab_dir/share-data" --control-socket "$lab_dir/fsd.sock"
wait_for 10 "the file-system share" grep -q " $lab_dir/share fuse" /proc/self/mounts

# Something to look at: a pool with one image.
ceph "${ceph_args[@]}" osd pool create lab-rbd 8 >/dev/null 2>&1 || true
rbd "${ceph_args[@]}" pool init lab-rbd >/dev/null 2>&1 || true
rbd "${ceph_args[@]}" create lab-rbd/demo --size 1G >/dev/null 2>&1 || true

cat <<EOT

lab: up. Logs and sockets are in $lab_dir. Try:
  export DPUSTOR_SERVER=http://127.0.0.1:$http_port
  build/src/cli/dpustorctl get dpus
  build/src/cli/dpustorctl get clusters
  build/src/cli/dpustorctl get images
  build/src/cli/dpustorctl describe dpu bf3-0
  curl -s http://127.0.0.1:$http_port/api/v1/dpus | python3 -m json.tool
  curl -s http://127.0.0.1:$http_port/metrics
  ceph --conf $CEPH_CONF --keyring $CEPH_KEYRING -s
  ls -l $lab_dir/share          # a FUSE mount served by dpustor-fsd from $lab_dir/share-data
  build/src/cli/dpustorctl create share docs --dpu bf2-0 --backend local:$lab_dir/share-data --tag docs --wait 30
  build/src/cli/dpustorctl get shares   # docs: vhost-user socket $lab_dir/vhost/docs.sock for a VM
  echo '{"jsonrpc":"2.0","id":1,"method":"fsd.stats"}' | python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("$lab_dir/fsd.sock"); s.sendall(sys.stdin.buffer.read()); print(s.recv(1<<20).decode())'
Ctrl-C stops the lab.
EOT

# Stay up until interrupted, or until one of the daemons dies.
while true; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "lab: ${names[$i]} exited; see $lab_dir/${names[$i]}.log" >&2
      exit 1
    fi
  done
  sleep 1
done
