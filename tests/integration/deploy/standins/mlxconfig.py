#!/usr/bin/env python3
"""Stand-in for NVIDIA's mlxconfig (tests only): keeps the card's settings in a JSON state
file and prints `-e q` in the real tool's layout. `-y s KEY=VAL...` sets next-boot values;
a test simulates the power cycle by copying next-boot values to current in the state file.

State: {"device": PATH, "device_type": "BlueField3", "name": ..., "description": ...,
        "params": {KEY: {"default": "False(0)", "current": "True(1)", "next": "True(1)"}}}
"""
import json
import sys

LABELS = {"0": "False(0)", "1": "True(1)", "false": "False(0)", "true": "True(1)"}


def fail(message, code=1):
    print("-E- " + message, file=sys.stderr)
    sys.exit(code)


def main(argv):
    if len(argv) < 2 or argv[0] != "--state":
        fail("usage: mlxconfig.py --state FILE -d DEV [-e] [-y] q|s ...", 2)
    path = argv[1]
    args = argv[2:]
    device, extended, yes, rest = None, False, False, []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-d":
            device = args[i + 1]
            i += 2
            continue
        if a == "-e":
            extended = True
        elif a == "-y":
            yes = True
        else:
            rest.append(a)
        i += 1
    with open(path) as f:
        state = json.load(f)
    if device != state["device"]:
        fail("Failed to open device: %s" % device)
    if not rest or rest[0] not in ("q", "query", "s", "set"):
        fail("No command given", 2)
    params = state["params"]
    if rest[0] in ("q", "query"):
        keys = rest[1:] or sorted(params)
        for k in keys:
            if k not in params:
                fail("The Device doesn't support %s parameter" % k)
        print("\nDevice #1:\n----------\n")
        print("Device type:        %-20s" % state["device_type"])
        print("Name:               %s" % state.get("name", ""))
        print("Description:        %s" % state.get("description", ""))
        print("Device:             %s\n" % device)
        if extended:
            print("Configurations:%41s%-20s%-20s%s" % ("", "Default", "Current", "Next Boot"))
        else:
            print("Configurations:%41s%s" % ("", "Next Boot"))
        for k in keys:
            p = params[k]
            mark = "*" if p["next"] != p["default"] or p["current"] != p["next"] else " "
            if extended:
                print("%s        %-44s%-20s%-20s%-20s" % (mark, k, p["default"], p["current"], p["next"]))
            else:
                print("%s        %-44s%-20s" % (mark, k, p["next"]))
        print("The '*' shows parameters with next value different from default/current value.")
        return 0
    # set
    pairs = []
    for kv in rest[1:]:
        if "=" not in kv:
            fail("Bad argument: %s" % kv, 2)
        k, v = kv.split("=", 1)
        if k not in params:
            fail("The Device doesn't support %s parameter" % k)
        pairs.append((k, v))
    if not pairs or not yes:
        fail("Nothing to set or no -y given", 2)
    for k, v in pairs:
        boolean = params[k]["default"] in ("False(0)", "True(1)")
        params[k]["next"] = LABELS.get(v.lower(), v) if boolean else v
    with open(path + ".tmp", "w") as f:
        json.dump(state, f, indent=2)
    import os
    os.replace(path + ".tmp", path)
    print("Apply new Configuration? (y/n) [n] : y\nApplying... Done!")
    print("-I- Please reboot machine to load new configurations.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
