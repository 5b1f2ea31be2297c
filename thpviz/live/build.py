"""Build the lab's executor (``executor.c``) on demand: one static binary,
the same on the host and in the QEMU guests.

It is compiled with ``gcc -O1 -static -pthread`` into a cache directory
(``$THPVIZ_CACHE`` or ``~/.cache/thpviz``), named after the source's hash, so
an edited source is rebuilt and a built one is reused.  io_uring is used
through its raw system calls (no liburing), userfaultfd and PAGEMAP_SCAN
through their ioctls with the structures defined in the source.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("executor.c")


class LabUnavailable(Exception):
    """The lab cannot run here; the message is the reason (a skip reason)."""


def cache_dir() -> Path:
    base = os.environ.get("THPVIZ_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "thpviz")
    return Path(base)


def executor_path(build: bool = True) -> Path:
    """Path of the built executor; builds it when missing.  Raises
    :class:`LabUnavailable` when there is no C compiler or no static libc."""
    src = SOURCE.read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:16]
    out = cache_dir() / "live" / f"thpviz-lab-{digest}"
    if out.exists():
        return out
    if not build:
        raise LabUnavailable("the lab executor is not built")
    cc = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if cc is None:
        raise LabUnavailable("no C compiler (gcc) to build the lab's executor; run scripts/setup_live.sh")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".build-")
    os.close(fd)
    try:
        r = subprocess.run([cc, "-O1", "-static", "-pthread", "-o", tmp, str(SOURCE)],
                           capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise LabUnavailable(f"building the lab's executor failed (a static libc is needed: "
                                 f"apt-get install libc6-dev): {last}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
