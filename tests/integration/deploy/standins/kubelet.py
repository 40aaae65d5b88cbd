#!/usr/bin/env python3
"""Stand-in for a DPU's standalone kubelet (tests only). Watches the static pod manifest
directory; when the SNAP pod's manifest appears or changes it stops the SNAP it started (by
PID) and starts dpustor-snap-sim in its place, with the socket the manifest maps to the host
(SNAP_SPDK_SOCK inside the container, through the pod's hostPath volumes); when the manifest
goes away it stops SNAP. Its containers are written to a state file that the crictl stand-in
reads. Stops its children when it is stopped (SIGTERM/SIGINT).

Image behaviours: a tag containing "never-ready" runs a process that never opens the socket
(the container runs, SNAP never answers); "never-starts" runs nothing; an image containing
"snap3" runs the simulator in the SNAP 3 dialect; anything else runs SNAP-4.
"""
import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import yaml


class Kubelet:
    def __init__(self, args):
        self.args = args
        self.child = None      # subprocess.Popen of the running "container"
        self.container = None  # its record for the state file
        self.digest = None     # of the manifest the container was started from
        self.counter = 0
        self.stopping = False

    def log(self, message):
        print("kubelet: " + message, flush=True)

    def write_state(self):
        containers = [self.container] if self.container else []
        tmp = self.args.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"containers": containers}, f, indent=2)
        os.replace(tmp, self.args.state)

    def stop_child(self):
        if not self.child:
            return
        self.log("stopping pid %d" % self.child.pid)
        self.child.terminate()
        try:
            self.child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        self.child = None
        self.container = None
        self.write_state()

    def host_socket(self, container, pod):
        env = {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}
        inside = env.get("SNAP_SPDK_SOCK", "/var/tmp/spdk.sock")
        volumes = {v["name"]: v.get("hostPath", {}).get("path") for v in pod["spec"].get("volumes", [])}
        best = None
        for m in container.get("volumeMounts", []):
            mp = m["mountPath"].rstrip("/")
            if inside.startswith(mp + "/") and (best is None or len(mp) > len(best[0])):
                best = (mp, volumes.get(m["name"]))
        if not best or not best[1]:
            raise ValueError("the socket %s is on no hostPath volume" % inside)
        return best[1] + inside[len(best[0]):]

    def start(self, pod, digest):
        container = pod["spec"]["containers"][0]
        image = container["image"]
        name = pod["metadata"]["name"]
        self.counter += 1
        log = open(os.path.join(self.args.log_dir, "snap-%d.log" % self.counter), "w")
        if "never-starts" in image:
            self.log("image %s never starts" % image)
            self.digest = digest
            return
        if "never-ready" in image:
            argv = ["sleep", "100000"]
        else:
            dialect = "snap3" if "snap3" in image else "snap4"
            sock = self.host_socket(container, pod)
            os.makedirs(os.path.dirname(sock), exist_ok=True)
            argv = [self.args.sim, "--dialect", dialect, "--socket", sock] + self.args.sim_arg
        self.log("starting %s for image %s" % (" ".join(argv), image))
        self.child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.digest = digest
        self.container = {
            "id": hashlib.sha256(("%s-%d" % (digest, self.counter)).encode()).hexdigest(),
            "pod_id": hashlib.sha256(name.encode()).hexdigest(),
            "name": container["name"],
            "pod": "%s-%s" % (name, socket.gethostname()),
            "namespace": pod["metadata"].get("namespace", "default"),
            "image": image,
            "state": "CONTAINER_RUNNING",
            "pid": self.child.pid,
            "created_ns": time.time_ns(),
        }
        self.write_state()

    def tick(self):
        path = os.path.join(self.args.manifest_dir, self.args.manifest)
        try:
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            if self.child or self.digest:
                self.log("manifest removed")
                self.stop_child()
                self.digest = None
            return
        digest = hashlib.sha256(text).hexdigest()
        if digest == self.digest:
            if self.child and self.child.poll() is not None and self.container:
                self.container["state"] = "CONTAINER_EXITED"
                self.write_state()
            return
        try:
            pod = yaml.safe_load(text)
            pod["spec"]["containers"][0]["image"]
        except Exception as e:  # a half-written or broken manifest: kubelet logs and waits
            self.log("cannot read %s: %s" % (path, e))
            return
        self.log("manifest %s" % ("changed" if self.digest else "appeared"))
        self.stop_child()
        self.start(pod, digest)

    def run(self):
        self.write_state()
        while not self.stopping:
            self.tick()
            time.sleep(self.args.poll)
        self.stop_child()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--manifest-dir", required=True)
    p.add_argument("--manifest", default="doca_snap.yaml")
    p.add_argument("--state", required=True)
    p.add_argument("--sim", required=True)
    p.add_argument("--sim-arg", action="append", default=[])
    p.add_argument("--log-dir", required=True)
    p.add_argument("--poll", type=float, default=0.2)
    kubelet = Kubelet(p.parse_args())

    def stop(signo, frame):
        kubelet.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
