"""A FUSE filesystem that hangs, for real: mounted from /dev/fuse with the
mount(2) system call, then left unanswered, so every call on it (statfs,
stat, readdir) blocks in the kernel as on a dead NFS server or a stuck FUSE
daemon. Once the file named by the second argument exists it starts to
answer (INIT, STATFS, GETATTR), and the stuck calls return.

Standard library only (no FUSE binding): python3 fuse_hung.py MOUNTPOINT
RELEASE_FILE. Prints "mounted" once mounted. Needs root and /dev/fuse.
"""

import ctypes
import os
import struct
import sys
import time

FUSE_GETATTR = 3
FUSE_STATFS = 17
FUSE_INIT = 26
FUSE_DESTROY = 38
NO_REPLY = {2, 36, 42}  # FORGET, INTERRUPT, BATCH_FORGET
ENOSYS = 38

# 1000 blocks of 4 KiB, half of them free.
BLOCKS, FREE, BSIZE = 1000, 500, 4096


def reply(fd, unique, payload=b"", error=0):
    os.write(fd, struct.pack("<IiQ", 16 + len(payload), -error, unique) + payload)


def serve(fd):
    while True:
        try:
            req = os.read(fd, 1 << 20)
        except OSError:
            return
        length, opcode, unique, nodeid = struct.unpack_from("<IIQQ", req)
        body = req[40:length]
        if opcode == FUSE_INIT:
            major, minor = struct.unpack_from("<II", body)
            out = struct.pack("<IIIIHHIIHHI", 7, min(minor, 31), 0, 0, 16, 12, 4096, 0, 0, 0, 0)
            reply(fd, unique, out + b"\0" * 28)
        elif opcode == FUSE_STATFS:
            kstatfs = struct.pack("<QQQQQIII", BLOCKS, FREE, FREE, 100, 50, BSIZE, 255, BSIZE)
            reply(fd, unique, kstatfs + b"\0" * 28)
        elif opcode == FUSE_GETATTR:
            now = int(time.time())
            attr = struct.pack(
                "<QQQQQQIIIIIIIIII",
                1, 0, 0, now, now, now, 0, 0, 0, 0o40755, 2, 0, 0, 0, BSIZE, 0,
            )
            reply(fd, unique, struct.pack("<QII", 1, 0, 0) + attr)
        elif opcode == FUSE_DESTROY:
            reply(fd, unique)
            return
        elif opcode not in NO_REPLY:
            reply(fd, unique, error=ENOSYS)


def main():
    point, release = sys.argv[1], sys.argv[2]
    fd = os.open("/dev/fuse", os.O_RDWR)
    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
    if libc.mount(b"hung", point.encode(), b"fuse.hung", 0, opts) != 0:
        err = ctypes.get_errno()
        sys.exit(f"mount {point}: {os.strerror(err)}")
    print("mounted", flush=True)
    while not os.path.exists(release):
        time.sleep(0.05)
    serve(fd)


if __name__ == "__main__":
    main()
