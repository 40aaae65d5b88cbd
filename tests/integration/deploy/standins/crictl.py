#!/usr/bin/env python3
"""Stand-in for crictl (tests only): `crictl ps [--name RE] [-o json]` from the stand-in
kubelet's state file, in crictl's JSON shape ({"containers": [{id, podSandboxId, metadata,
image: {image}, imageRef, state, createdAt, labels, annotations}]})."""
import json
import os
import re
import sys


def main(argv):
    if len(argv) < 2 or argv[0] != "--state":
        print("usage: crictl.py --state FILE ps [--name RE] [-o json]", file=sys.stderr)
        return 2
    path, args = argv[1], argv[2:]
    if not args or args[0] != "ps":
        print("crictl stand-in: only 'ps' is implemented", file=sys.stderr)
        return 1
    name, output, everything = None, "table", False
    i = 1
    while i < len(args):
        if args[i] == "--name":
            name = args[i + 1]
            i += 2
        elif args[i] in ("-o", "--output"):
            output = args[i + 1]
            i += 2
        elif args[i] in ("-a", "--all"):
            everything = True
            i += 1
        else:
            i += 1
    containers = []
    if os.path.exists(path):
        with open(path) as f:
            containers = json.load(f).get("containers", [])
    shown = []
    for c in containers:
        if name and not re.search(name, c["name"]):
            continue
        if c["state"] != "CONTAINER_RUNNING" and not everything:
            continue
        shown.append({
            "id": c["id"],
            "podSandboxId": c["pod_id"],
            "metadata": {"name": c["name"], "attempt": 0},
            "image": {"image": c["image"], "annotations": {}},
            "imageRef": c["image"],
            "state": c["state"],
            "createdAt": str(c["created_ns"]),
            "labels": {"io.kubernetes.container.name": c["name"],
                       "io.kubernetes.pod.name": c["pod"],
                       "io.kubernetes.pod.namespace": c["namespace"]},
            "annotations": {},
        })
    if output == "json":
        print(json.dumps({"containers": shown}, indent=2))
    else:
        print("CONTAINER           IMAGE               CREATED             STATE               NAME")
        for c in shown:
            print("%-20s%-20s%-20s%-20s%s" % (c["id"][:13], c["image"]["image"], c["createdAt"],
                                              c["state"], c["metadata"]["name"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
