#!/usr/bin/env python3
"""Writes the seed corpora for dpustor-fuzz-vhost-user-messages (corpus/vhost_user_messages)
and dpustor-fuzz-virtqueue-chains (corpus/virtqueue_chains); the record layouts are in
vhost_user_messages_fuzz.cc and virtqueue_chains_fuzz.cc. The message seeds are the
sequence QEMU sends to bring up a vhost-user-fs device with one high-priority and one
request queue, with a FUSE_INIT chain (and more requests) already in the guest's ring."""
import os
import struct
import sys

here = os.path.dirname(os.path.abspath(__file__))
base = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")

# --- dpustor-fuzz-vhost-user-messages ------------------------------------------------------
# Indexes into kRequests.
GET_FEATURES, SET_FEATURES, SET_OWNER, RESET_OWNER, SET_MEM_TABLE = 0, 1, 2, 3, 4
SET_VRING_NUM, SET_VRING_ADDR, SET_VRING_BASE, GET_VRING_BASE = 5, 6, 7, 8
SET_VRING_KICK, SET_VRING_CALL, SET_VRING_ERR = 9, 10, 11
GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES, GET_QUEUE_NUM, SET_VRING_ENABLE = 12, 13, 14, 15
# Fd kinds.
FD_RAM, FD_KICK0, FD_KICK1, FD_EVENTFD = 0, 4, 5, 6
NEED_REPLY = 1

USER_BASE = 0x7F0000000000  # where the front-end has guest RAM (gpa 0) mapped
FEATURES = (1 << 32) | (1 << 30) | (1 << 28)  # VERSION_1, PROTOCOL_FEATURES, INDIRECT_DESC
EVENT_IDX = 1 << 29
PROTOCOL = (1 << 0) | (1 << 3)  # MQ, REPLY_ACK


def msg(req, payload=b"", fds=(), flags=0, socket=False):
    """A message with its natural size and fd count."""
    return bytes([4 if socket else 0, req, flags, 0]) + payload + bytes([0]) + bytes(fds)


def u64(v):
    return struct.pack("<Q", v)


def state(index, num):
    return struct.pack("<II", index, num)


def poke(gpa, data):
    return bytes([5]) + struct.pack("<IH", gpa, len(data)) + data


def KICK(i):
    return bytes([6, i])


FLUSH = bytes([7])

# Ring layout in guest RAM, queue size 16: queue q's rings at 0x1000 * (q + 1).
QSIZE = 16


def rings(q):
    desc = 0x1000 * (q + 1)
    return desc, desc + 16 * QSIZE, (desc + 16 * QSIZE + 6 + 2 * QSIZE + 3) & ~3


def desc(gpa, len_, flags=0, next_=0):
    return struct.pack("<QIHH", gpa, len_, flags, next_)


NEXT, WRITE, INDIRECT = 1, 2, 4
unique = [0]


def fuse(opcode, nodeid, args):
    unique[0] += 2
    return struct.pack("<IIQQIIIHH", 40 + len(args), opcode, unique[0], nodeid, 0, 0, 1, 0, 0) + args


def chain_pokes(q, chains):
    """Request chains in queue q: each (request bytes, reply size) at its own 8 KiB slot,
    one descriptor for the request and one for the reply; the avail ring offers them."""
    d, a, _ = rings(q)
    out = b""
    table = b""
    for i, (req, reply) in enumerate(chains):
        buf = 0x10000 + 0x2000 * i + 0x10000 * q
        out += poke(buf, req)
        table += desc(buf, len(req), NEXT, 2 * i + 1) + desc(buf + 0x1000, reply, WRITE)
    out += poke(d, table)
    ring = struct.pack("<HH", 0, len(chains)) + b"".join(struct.pack("<H", 2 * i) for i in range(len(chains)))
    return out + poke(a, ring)


def bring_up(features=FEATURES, socket=False, queues=2):
    s = b""
    s += msg(GET_FEATURES, socket=socket)
    s += msg(GET_PROTOCOL_FEATURES, socket=socket)
    s += msg(SET_PROTOCOL_FEATURES, u64(PROTOCOL), socket=socket)
    s += msg(GET_QUEUE_NUM, socket=socket)
    s += msg(SET_OWNER, socket=socket)
    for q in range(queues):
        s += msg(SET_VRING_CALL, u64(q), [FD_EVENTFD], socket=socket)
    s += msg(SET_FEATURES, u64(features), flags=NEED_REPLY, socket=socket)
    table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 2 << 20, USER_BASE, 0)
    s += msg(SET_MEM_TABLE, table, [FD_RAM], flags=NEED_REPLY, socket=socket)
    for q in range(queues):
        d, a, u = rings(q)
        s += msg(SET_VRING_NUM, state(q, QSIZE), socket=socket)
        s += msg(SET_VRING_BASE, state(q, 0), socket=socket)
        addr = struct.pack("<IIQQQQ", q, 0, USER_BASE + d, USER_BASE + u, USER_BASE + a, 0)
        s += msg(SET_VRING_ADDR, addr, socket=socket)
        s += msg(SET_VRING_KICK, u64(q), [FD_KICK0 + q], socket=socket)
        s += msg(SET_VRING_CALL, u64(q), [FD_EVENTFD], socket=socket)
    for q in range(queues):
        s += msg(SET_VRING_ENABLE, state(q, 1), socket=socket)
    return s


init = fuse(26, 0, struct.pack("<IIII", 7, 38, 131072, 0xFFFFFFFF) + bytes(48))
lookup = fuse(1, 1, b"file\0")
mkdir = fuse(9, 1, struct.pack("<II", 0o755, 0o22) + b"dir\0")
create = fuse(35, 1, struct.pack("<IIII", 0o101, 0o100644, 0o22, 0) + b"new\0")
getattr_ = fuse(3, 1, struct.pack("<IIQ", 0, 0, 0))
statfs = fuse(17, 1, b"")
forget = fuse(2, 2, struct.pack("<Q", 1))

messages = {}
# Config byte 0: engine handler, one request queue, queue sizes up to 1024.
init_pokes = chain_pokes(1, [(init, 4096)])
messages["bringup_init"] = bytes([0]) + init_pokes + bring_up() + KICK(1) + FLUSH
more = chain_pokes(1, [(init, 4096), (lookup, 4096), (mkdir, 4096), (create, 4096),
                       (getattr_, 4096), (statfs, 4096)])
messages["bringup_requests_event_idx"] = (bytes([0]) + more + bring_up(FEATURES | EVENT_IDX) +
                                          KICK(1) + FLUSH +
                                          msg(GET_VRING_BASE, state(1, 0)) +
                                          msg(GET_VRING_BASE, state(0, 0)))
messages["bringup_socket"] = bytes([0]) + init_pokes + bring_up(socket=True) + KICK(1) + FLUSH
# Engine from another thread, completing out of order; then a reset mid-flight.
messages["bringup_async_reset"] = (bytes([1]) + more + bring_up() + KICK(1) +
                                   msg(RESET_OWNER) + FLUSH)
# Raw handler (odd reply sizes); the hiprio queue gets a FORGET.
hiprio = chain_pokes(0, [(forget, 0)])
messages["bringup_raw_hiprio"] = bytes([2]) + more + hiprio + bring_up() + KICK(0) + KICK(1)
# A new memory table while the rings run (they restart on the new mapping).
table = struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 2 << 20, USER_BASE, 0)
messages["remap_while_running"] = (bytes([0]) + init_pokes + bring_up() + KICK(1) +
                                   msg(SET_MEM_TABLE, table, [FD_RAM]) + KICK(1) + FLUSH)

# --- dpustor-fuzz-virtqueue-chains ---------------------------------------------------------


def region(pages, off=0, gap=0):
    return struct.pack("<H", pages - 1) + bytes([off, gap])


def uaddr(r, off):
    return bytes([r]) + struct.pack("<I", off)


def header(regions, log2size, features, rings_, last_avail=0):
    out = bytes([len(regions) - 1]) + b"".join(regions) + bytes([log2size, features])
    return out + struct.pack("<H", last_avail) + b"".join(uaddr(r, o) for r, o in rings_)


def vdesc(i, r, off, len_, flags, next_=0):
    return bytes([1]) + struct.pack("<H", i) + bytes([r]) + struct.pack("<IH", off, len_) + bytes([flags]) + struct.pack("<H", next_)


def indirect_entry(tr, toff, i, r, off, len_, flags, next_=0):
    return (bytes([2, tr]) + struct.pack("<I", toff) + bytes([i, r]) + struct.pack("<IH", off, len_) +
            bytes([flags]) + struct.pack("<H", next_))


def AVAIL(head):
    return bytes([3]) + struct.pack("<H", head)


POP, PUSH_FIRST, NOTIFY = bytes([5]), bytes([6, 0, 1]), bytes([8])
RECREATE_KEEP = bytes([11, 1, 0, 0])
EVT, IND = 1, 2
chains = {}
one_region = [region(16)]
ring_at = [(0, 0x1000), (0, 0x1080), (0, 0x10A0)]
chains["simple"] = (header(one_region, 3, 0, ring_at) + vdesc(0, 0, 0x4000, 64, NEXT, 1) +
                    vdesc(1, 0, 0x5000, 256, WRITE) + AVAIL(0) + POP + PUSH_FIRST + NOTIFY + POP)
chains["event_idx"] = (header(one_region, 3, EVT, ring_at) + vdesc(0, 0, 0x4000, 64, NEXT, 1) +
                       vdesc(1, 0, 0x5000, 256, WRITE) + AVAIL(0) + AVAIL(0) + POP + POP +
                       PUSH_FIRST + NOTIFY + PUSH_FIRST + NOTIFY + bytes([9, 5, 0]))
# Two regions with a hole; the indirect table lives in the second.
two = [region(16), region(8, off=1, gap=16)]
chains["indirect"] = (header(two, 4, EVT | IND, ring_at) + vdesc(0, 1, 0x100, 48, INDIRECT) +
                      indirect_entry(1, 0x100, 0, 0, 0x4000, 40, NEXT, 1) +
                      indirect_entry(1, 0x100, 1, 1, 0x1000, 100, NEXT, 2) +
                      indirect_entry(1, 0x100, 2, 0, 0x6000, 4096, WRITE) +
                      AVAIL(0) + POP + PUSH_FIRST + NOTIFY)
# A chain that loops; the queue breaks, then is set up again.
chains["loop_recreate"] = (header(one_region, 2, 0, ring_at) + vdesc(0, 0, 0x4000, 16, NEXT, 1) +
                           vdesc(1, 0, 0x4100, 16, NEXT, 0) + AVAIL(0) + POP + POP +
                           RECREATE_KEEP + vdesc(1, 0, 0x4100, 16, WRITE) + POP)
# Three regions (two adjacent in guest space): a buffer straddling them must be refused.
three = [region(4), region(4, gap=4), region(4, off=0x80)]
chains["straddle"] = (header(three, 3, 0, ring_at) + vdesc(0, 1, 0x3FF0, 32, 0) + AVAIL(0) + POP)

for name, seeds in (("vhost_user_messages", messages), ("virtqueue_chains", chains)):
    out_dir = os.path.join(base, name)
    os.makedirs(out_dir, exist_ok=True)
    for label, data in seeds.items():
        with open(os.path.join(out_dir, label), "wb") as f:
            f.write(data)
