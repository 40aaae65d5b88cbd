#!/usr/bin/env python3
"""Stand-in for systemctl (tests only), for the SNAP 3.x service: `start|stop|restart
mlnx_snap` starts or stops dpustor-snap-sim in the SNAP 3 dialect, detached like a service,
its PID kept in a state file (the test stops it by that PID at the end); `is-active` answers
as systemctl does. The service's init RPC file is copied into the state to show it was read.
"""
import json
import os
import signal
import subprocess
import sys
import time


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours would count as alive; the service is not our child, so no zombies.
    return True


def main(argv):
    opts = {}
    while argv and argv[0].startswith("--"):
        opts[argv[0][2:]] = argv[1]
        argv = argv[2:]
    if len(argv) != 2 or argv[1] != opts.get("service", "mlnx_snap"):
        print("usage: systemctl.py --state F --sim BIN --socket S --log L [--init-conf F] "
              "start|stop|restart|is-active mlnx_snap", file=sys.stderr)
        return 2
    command, path = argv[0], opts["state"]
    state = {}
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
    pid = state.get("pid")
    running = bool(pid) and alive(pid)
    if command == "is-active":
        print("active" if running else "inactive")
        return 0 if running else 3
    if command in ("stop", "restart") and running:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.1)
        state["pid"] = None
    if command in ("start", "restart"):
        init = opts.get("init-conf")
        state["init_conf"] = open(init).read() if init and os.path.exists(init) else None
        log = open(opts["log"], "a")
        child = subprocess.Popen([opts["sim"], "--dialect", "snap3", "--socket", opts["socket"]],
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        state["pid"] = child.pid
        state["starts"] = state.get("starts", 0) + 1
    with open(path + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
