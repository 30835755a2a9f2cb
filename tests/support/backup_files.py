"""Backup files for tests: a header, a whole backup file, and hand-crafted hostile volume
archives (each with a fragment of the message that refuses it)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from paas_svc.kinds import strategy as bk
from paas_svc.kinds.strategy import BackupHeader, encode_header


def header_for(template_key: str = "redis-7", payload: bytes = b"REDIS0011", **changes) -> BackupHeader:
    values = dict(template=template_key, image="redis:7-alpine", created_at="2025-01-02T03:04:05Z",
                  tool_version="Redis server v=7.0.15", project="shop", env="production", slug="cache",
                  payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest())
    values.update(changes)
    return BackupHeader(**values)


def write_backup(path: Path, template_key: str, payload: bytes, pad: bool = True) -> Path:
    header = header_for(template_key, payload)
    path.write_bytes(encode_header(header, pad_to=bk.RESERVED_HEADER_BYTES if pad else None) + payload)
    return path


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", content: bytes = b"", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    info.size = len(content) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(content) if kind == tarfile.REGTYPE else None)


def crafted_tar(*entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, content in entries:
            archive.addfile(info, content)
    return buffer.getvalue()


ROOT_DIR = tar_entry("data", tarfile.DIRTYPE, mode=0o755)

HOSTILE_ARCHIVES = {
    "symlink-to-root-then-through-it": (crafted_tar(ROOT_DIR, tar_entry("data/x", tarfile.SYMTYPE, "/"),
                                                    tar_entry("data/x/etc/passwd", content=b"root::0:0::/:/bin/sh\n")), "symlink"),
    "relative-symlink-escape": (crafted_tar(ROOT_DIR, tar_entry("data/up", tarfile.SYMTYPE, "../../etc")), "points outside"),
    "symlink-through-dot-then-dotdot": (crafted_tar(ROOT_DIR, tar_entry("data/b", tarfile.SYMTYPE, "."),
                                                    tar_entry("data/a", tarfile.SYMTYPE, "b/../x")), "points outside"),
    "inner-symlink-then-through-it": (crafted_tar(ROOT_DIR, tar_entry("data/sub", tarfile.DIRTYPE),
                                                  tar_entry("data/l", tarfile.SYMTYPE, "sub"), tar_entry("data/l/f", content=b"x")),
                                      "through the symlink"),
    "hardlink-to-etc-shadow": (crafted_tar(ROOT_DIR, tar_entry("data/shadow", tarfile.LNKTYPE, "/etc/shadow")), "leaves the volume"),
    "hardlink-outside-root": (crafted_tar(ROOT_DIR, tar_entry("data/passwd", tarfile.LNKTYPE, "etc/passwd")), "outside data/"),
    "hardlink-through-symlink": (crafted_tar(ROOT_DIR, tar_entry("data/x", tarfile.SYMTYPE, "sub"), tar_entry("data/sub", tarfile.DIRTYPE),
                                             tar_entry("data/h", tarfile.LNKTYPE, "data/x/f")), "through the symlink"),
    "fifo": (crafted_tar(ROOT_DIR, tar_entry("data/fifo", tarfile.FIFOTYPE)), "FIFO"),
    "char-device": (crafted_tar(ROOT_DIR, tar_entry("data/null", tarfile.CHRTYPE)), "device"),
    "block-device": (crafted_tar(ROOT_DIR, tar_entry("data/sda", tarfile.BLKTYPE)), "device"),
    "dotdot-path": (crafted_tar(ROOT_DIR, tar_entry("data/../etc/cron.d/x", content=b"* * * * * root sh\n")), "leaves the volume"),
    "absolute-path": (crafted_tar(tar_entry("/data/x", content=b"x")), "leaves the volume"),
    "root-is-a-symlink": (crafted_tar(tar_entry("data", tarfile.SYMTYPE, "/"), tar_entry("data/etc/passwd", content=b"x")), "not a folder"),
    "setuid-file": (crafted_tar(ROOT_DIR, tar_entry("data/sh", content=b"\x7fELF", mode=0o4755)), "set-user-id"),
    "escape-in-name": (crafted_tar(ROOT_DIR, tar_entry("data/\x1b[2Jx\n", tarfile.FIFOTYPE)), "FIFO"),
}
