#!/usr/bin/env python3
"""Writes the seed corpus for dpustor-fuzz-fuse-request (see fuse_request_fuzz.cc for the
record layout): one valid request per operation, a few split across buffers, and short
sequences (a held lock wait then its INTERRUPT, DESTROY then a request)."""
import os
import struct
import sys

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus", "fuse_request")
os.makedirs(out_dir, exist_ok=True)

unique = [10]


def req(opcode, nodeid, args):
    unique[0] += 2
    hdr = struct.pack("<IIQQIIIHH", 40 + len(args), opcode, unique[0], nodeid, 1000, 100, 42, 0, 0)
    return hdr + args


def name(s):
    return s.encode() + b"\0"


def record(body, in_sizes=(0,), out_sizes=(4096,), behaviour=0):
    """One request: `in_sizes` cut the body (the last buffer takes the rest)."""
    mode = (len(in_sizes) - 1) | ((len(out_sizes) - 1) << 2) | (behaviour << 4)
    sizes = b"".join(struct.pack("<H", n) for n in list(in_sizes) + list(out_sizes))
    return bytes([mode]) + sizes + struct.pack("<H", len(body)) + body


read_in = struct.pack("<QQIIQII", 3, 0, 4096, 0, 0, 0, 0)
lk_in = struct.pack("<QQQQIIII", 3, 9, 0, 100, 1, 42, 0, 0)
ops = {
    "lookup": req(1, 1, name("file")),
    "forget": req(2, 5, struct.pack("<Q", 1)),
    "getattr": req(3, 2, struct.pack("<IIQ", 1, 0, 3)),
    "setattr": req(4, 2, struct.pack("<IIQQQQQQIIIIIIII", 0x7f, 0, 3, 4096, 0, 1, 2, 3, 0, 0, 0, 0o644, 0, 0, 0, 0)),
    "readlink": req(5, 4, b""),
    "symlink": req(6, 1, name("ln") + name("target")),
    "mknod": req(8, 1, struct.pack("<IIII", 0o10644, 0, 0o22, 0) + name("fifo")),
    "mkdir": req(9, 1, struct.pack("<II", 0o755, 0o22) + name("dir")),
    "unlink": req(10, 1, name("file")),
    "rmdir": req(11, 1, name("dir")),
    "rename": req(12, 1, struct.pack("<Q", 1) + name("a") + name("b")),
    "link": req(13, 1, struct.pack("<Q", 2) + name("hard")),
    "open": req(14, 2, struct.pack("<II", 2, 0)),
    "read": req(15, 2, read_in),
    "write": req(16, 2, struct.pack("<QQIIQII", 3, 0, 5, 0, 0, 0, 0) + b"hello"),
    "statfs": req(17, 1, b""),
    "release": req(18, 2, struct.pack("<QIIQ", 3, 0, 0, 0)),
    "fsync": req(20, 2, struct.pack("<QII", 3, 1, 0)),
    "setxattr": req(21, 2, struct.pack("<II", 5, 0) + name("user.x") + b"value"),
    "getxattr": req(22, 2, struct.pack("<II", 0, 0) + name("user.x")),
    "listxattr": req(23, 2, struct.pack("<II", 100, 0)),
    "removexattr": req(24, 2, name("user.x")),
    "flush": req(25, 2, struct.pack("<QIIQ", 3, 0, 0, 9)),
    "init": req(26, 0, struct.pack("<IIII", 7, 38, 65536, 0xffffffff) + bytes(48)),
    "opendir": req(27, 1, struct.pack("<II", 0, 0)),
    "readdir": req(28, 1, read_in),
    "releasedir": req(29, 1, struct.pack("<QIIQ", 1, 0, 0, 0)),
    "fsyncdir": req(30, 1, struct.pack("<QII", 1, 0, 0)),
    "getlk": req(31, 2, lk_in),
    "setlk": req(32, 2, lk_in),
    "setlkw_flock": req(33, 2, struct.pack("<QQQQIIII", 3, 9, 0, 0, 1, 42, 1, 0)),
    "access": req(34, 2, struct.pack("<II", 4, 0)),
    "create": req(35, 1, struct.pack("<IIII", 0o101, 0o100644, 0o22, 0) + name("new")),
    "interrupt": req(36, 0, struct.pack("<Q", 12)),
    "destroy": req(38, 0, b""),
    "batch_forget": req(42, 0, struct.pack("<II", 2, 0) + struct.pack("<QQ", 2, 1) * 2),
    "fallocate": req(43, 2, struct.pack("<QQQII", 3, 0, 4096, 0, 0)),
    "readdirplus": req(44, 1, read_in),
    "rename2": req(45, 1, struct.pack("<QII", 1, 1, 0) + name("a") + name("b")),
    "lseek": req(46, 2, struct.pack("<QQII", 3, 0, 3, 0)),
    "copy_file_range": req(47, 2, struct.pack("<QQQQQQQ", 3, 0, 2, 3, 4096, 4096, 0)),
    "ioctl": req(39, 2, bytes(32)),
}
seeds = {label: record(body) for label, body in ops.items()}
# Split readable buffers (header cut), scattered reply buffers.
seeds["lookup_split"] = record(ops["lookup"], in_sizes=(7, 30, 0), out_sizes=(10, 200))
seeds["write_split"] = record(ops["write"], in_sizes=(40, 42, 0), out_sizes=(16, 8))
seeds["readdirplus_small"] = record(ops["readdirplus"], out_sizes=(100, 300, 7))
# Sequences: a held lock wait and its interrupt; misuse; a session ended then used.
setlkw = req(33, 2, lk_in)
held_unique = unique[0]
seeds["setlkw_interrupt"] = record(setlkw, behaviour=2) + record(
    req(36, 0, struct.pack("<Q", held_unique)))
seeds["misuse_read"] = record(ops["read"], behaviour=3) + record(ops["lookup"], behaviour=3)
seeds["destroy_then_lookup"] = record(ops["destroy"]) + record(ops["lookup"])
for label, data in seeds.items():
    with open(os.path.join(out_dir, label), "wb") as f:
        f.write(data)
