# Helpers the benchmark scripts share; source it after setting PROG (the script's name).

die() {
  echo "$PROG: $*" >&2
  exit 1
}

# stop_pid PID NAME: SIGTERM, up to 10 s for it to end, then SIGKILL; reaps it.
stop_pid() {
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$PROG: $2 (pid $pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
