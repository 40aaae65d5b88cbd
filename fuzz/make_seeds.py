#!/usr/bin/env python3
"""Writes the seed corpus for dpustor-fuzz-fuse-request: one valid request per common
opcode, in the fuzzer's layout (1 readable buffer, 1 writable buffer of 4 KiB)."""
import os
import struct
import sys

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "fuse_request")
os.makedirs(out_dir, exist_ok=True)


def req(opcode, nodeid, args):
    hdr = struct.pack("<IIQQIIII", 40 + len(args), opcode, 5, nodeid, 1000, 100, 42, 0)
    return hdr + args


def name(s):
    return s.encode() + b"\0"


read_in = struct.pack("<QQIIQII", 3, 0, 4096, 0, 0, 0, 0)
seeds = {
    "lookup": req(1, 1, name("file")),
    "getattr": req(3, 2, struct.pack("<IIQ", 1, 0, 3)),
    "setattr": req(4, 2, bytes(88)),
    "symlink": req(6, 1, name("ln") + name("target")),
    "mknod": req(8, 1, struct.pack("<IIII", 0o10644, 0, 0o22, 0) + name("fifo")),
    "mkdir": req(9, 1, struct.pack("<II", 0o755, 0o22) + name("dir")),
    "rename2": req(45, 1, struct.pack("<QII", 1, 1, 0) + name("a") + name("b")),
    "link": req(13, 1, struct.pack("<Q", 2) + name("hard")),
    "open": req(14, 2, struct.pack("<II", 2, 0)),
    "read": req(15, 2, read_in),
    "write": req(16, 2, struct.pack("<QQIIQII", 3, 0, 5, 0, 0, 0, 0) + b"hello"),
    "setxattr": req(21, 2, struct.pack("<II", 5, 0) + name("user.x") + b"value"),
    "getxattr": req(22, 2, struct.pack("<II", 0, 0) + name("user.x")),
    "readdirplus": req(44, 1, read_in),
    "setlk": req(32, 2, struct.pack("<QQQQIIII", 3, 9, 0, 100, 1, 42, 0, 0)),
    "batch_forget": req(42, 0, struct.pack("<II", 2, 0) + struct.pack("<QQ", 2, 1) * 2),
    "copy_file_range": req(47, 2, struct.pack("<QQQQQQQ", 3, 0, 2, 3, 4096, 4096, 0)),
}
for label, body in seeds.items():
    layout = bytes([0, 0]) + struct.pack("<HH", len(body), 4096)
    with open(os.path.join(out_dir, label), "wb") as f:
        f.write(layout + body)
