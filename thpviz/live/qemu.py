"""``thpviz live --kernel 6.1|6.12``: boot Debian's cloud kernel under QEMU
(TCG: nested KVM does not work on the machines this was built on) with a
minimal initramfs -- busybox, the lab's static executor, the compiled
plans and a small init -- and judge the scenarios against that kernel's era.

The kernel package is resolved at run time (``apt-cache search``: Debian
bumps the ABI number, e.g. ``linux-image-6.1.0-57-cloud-amd64-unsigned``),
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into the
cache directory -- never installed into /boot.  The init mounts proc, sysfs,
devtmpfs and debugfs (so ``split_page`` can use split_huge_pages), sets THP
to ``madvise`` in the guest's own /sys, runs the executor's probe, every plan
and optionally the cost measurement, writing the executor's JSON lines to a
second serial port (a file on the host), and powers off.  QEMU runs under a
timeout in its own session; nothing is left running.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from .build import LabUnavailable, cache_dir, executor_path
from .lab import finish, prepare
from .observe import parse_lines

PACKAGES = {
    "6.1": r"^linux-image-6\.1\.0-(\d+)-cloud-amd64-unsigned$",
    "6.12": r"^linux-image-6\.12\.(\d+)\+deb\d+-cloud-amd64-unsigned$",
}


def _run(cmd, cwd=None, timeout=600):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def resolve_package(kernel: str) -> str:
    """The newest Debian package name for ``kernel`` (6.1 or 6.12)."""
    if shutil.which("apt-cache") is None:
        raise LabUnavailable("no apt-cache: Debian's kernel packages cannot be found on this system")
    pat = re.compile(PACKAGES[kernel])
    query = {"6.1": r"^linux-image-6\.1\.0-.*-cloud-amd64-unsigned$",
             "6.12": r"^linux-image-6\.12\..*-cloud-amd64-unsigned$"}[kernel]
    r = _run(["apt-cache", "search", "--names-only", query])
    names = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    found = [(n, int(m.group(1))) for n in names if (m := pat.match(n))]
    if not found:
        raise LabUnavailable(f"no Debian package for Linux {kernel} (cloud-amd64) in the apt lists; "
                             "run apt-get update")
    return max(found, key=lambda f: f[1])[0]


def fetch_kernel(kernel: str) -> Path:
    """Path of the vmlinuz of Debian's ``kernel``, downloaded and unpacked
    into the cache on first use."""
    pkg = resolve_package(kernel)
    d = cache_dir() / "kernels" / pkg
    boot = d / "root" / "boot"
    found = sorted(boot.glob("vmlinuz-*")) if boot.exists() else []
    if found:
        return found[0]
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise LabUnavailable("apt-get and dpkg are needed to fetch Debian's kernel")
    d.mkdir(parents=True, exist_ok=True)
    r = _run(["apt-get", "download", pkg], cwd=d)
    debs = sorted(d.glob("*.deb"))
    if r.returncode != 0 or not debs:
        raise LabUnavailable(f"apt-get download {pkg} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    r = _run(["dpkg", "-x", str(debs[0]), str(d / "root")])
    if r.returncode != 0:
        raise LabUnavailable(f"dpkg -x failed: {r.stderr.strip()[-200:]}")
    debs[0].unlink()
    found = sorted(boot.glob("vmlinuz-*"))
    if not found:
        raise LabUnavailable(f"{pkg} holds no vmlinuz")
    return found[0]


def find_busybox() -> Path:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            r = _run(["file", p]) if shutil.which("file") else None
            if r is None or "statically" in r.stdout or "static-pie" in r.stdout:
                return Path(p)
    d = cache_dir() / "busybox"
    bb = d / "root" / "bin" / "busybox"
    if bb.exists():
        return bb
    d.mkdir(parents=True, exist_ok=True)
    r = _run(["apt-get", "download", "busybox-static"], cwd=d)
    debs = sorted(d.glob("*.deb"))
    if r.returncode != 0 or not debs:
        raise LabUnavailable("no static busybox (apt-get install busybox-static, or scripts/setup_live.sh)")
    _run(["dpkg", "-x", str(debs[0]), str(d / "root")])
    if not bb.exists():
        raise LabUnavailable("busybox-static holds no /bin/busybox")
    return bb


# ----------------------------------------------------------------- initramfs
def _cpio_newc(entries) -> bytes:
    """A newc cpio archive of (name, mode, data) entries; data None for a
    directory."""
    out = io.BytesIO()
    ino = 1
    for name, mode, data in list(entries) + [("TRAILER!!!", 0, b"")]:
        data = data or b""
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.write(hdr.encode() + nb)
        out.write(b"\0" * ((4 - (110 + len(nb)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
        ino += 1
    return out.getvalue()


INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
echo madvise > /sys/kernel/mm/transparent_hugepage/enabled
O=/dev/ttyS1
echo "==THPVIZ-PROBE==" > $O
/lab probe > $O 2>&1
for p in /plans/*.plan; do
  [ -e "$p" ] || continue
  echo "==THPVIZ-BEGIN $p==" > $O
  /bin/busybox timeout {timeout} /lab run < $p > $O 2>&1
  echo "==THPVIZ-END $p rc=$?==" > $O
done
{costs}
echo "==THPVIZ-DONE==" > $O
/bin/busybox sync
/bin/busybox poweroff -f
"""


def build_initramfs(path: Path, plans: list[str], with_costs: bool, timeout: int = 120) -> None:
    exe = executor_path()
    bb = find_busybox()
    costs = "/lab costs 3 16 > $O 2>&1" if with_costs else ""
    entries = [("bin", 0o40755, None), ("plans", 0o40755, None), ("proc", 0o40755, None),
               ("sys", 0o40755, None), ("dev", 0o40755, None), ("tmp", 0o41777, None),
               ("bin/busybox", 0o100755, bb.read_bytes()),
               ("lab", 0o100755, Path(exe).read_bytes()),
               ("init", 0o100755, INIT.replace("{costs}", costs).replace("{timeout}", str(timeout)).encode())]
    for i, text in enumerate(plans):
        entries.append((f"plans/{i:04d}.plan", 0o100644, text.encode()))
    path.write_bytes(gzip.compress(_cpio_newc(entries), compresslevel=1))


def boot(vmlinuz: Path, initrd: Path, out: Path, timeout: float) -> tuple[str, str | None]:
    """Boot and wait for power-off; (serial console text, problem or None)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise LabUnavailable("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86, "
                             "or scripts/setup_live.sh)")
    cmd = [qemu, "-accel", "tcg", "-cpu", "max", "-m", "2G", "-smp", "2", "-display", "none", "-no-reboot",
           "-kernel", str(vmlinuz), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 quiet loglevel=1",
           "-serial", "stdio", "-serial", f"file:{out}", "-monitor", "none"]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, errors="replace", start_new_session=True)
    problem = None
    try:
        console, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        problem = f"the guest did not power off within {timeout:.0f} s"
        console = ""
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.kill()
        p.wait()
    return console or "", problem


def split_output(text: str) -> tuple[dict | None, dict, str | None]:
    """(probe record, plan index -> executor output, costs JSON text)."""
    probe = None
    plans: dict[int, str] = {}
    costs = None
    cur = None
    buf: list[str] = []
    for line in text.splitlines():
        line = line.strip("\r")
        m = re.match(r"==THPVIZ-BEGIN /plans/(\d+)\.plan==", line)
        if m:
            cur, buf = int(m.group(1)), []
            continue
        if line.startswith("==THPVIZ-END"):
            if cur is not None:
                plans[cur] = "\n".join(buf)
            cur = None
            continue
        if cur is not None:
            buf.append(line)
        elif line.startswith('{"t":"probe"'):
            probe = parse_lines(line)[0] if parse_lines(line) else None
        elif line.startswith('{"t":"costs"'):
            costs = line
    return probe, plans, costs


def guest_caps(kernel: str):
    """What a guest of ours is assumed to allow before it has booted."""
    from .probe import Capabilities

    return Capabilities(linux=True, where=f"a QEMU TCG guest with Debian's {kernel} kernel", root=True,
                        cap_sys_admin=True, thp_mode="madvise", use_zero_page=True, io_uring_disabled=0,
                        page_size=4096, pmd_subpages=512, executor="(in the guest)", pfn_visible=True,
                        kpageflags=True, thp="pmd", io_uring="ok", pin_ro="ok", split_huge_pages=True,
                        allow_global=True, release=kernel)


def run_in_guest(kernel: str, files, era=None, progress=None, probe_only: bool = False,
                 with_costs: bool = False, timeout: float | None = None):
    """Boot ``kernel`` and judge ``files`` there: (caps, results) -- plus the
    costs record when ``with_costs``.  Every failure to boot becomes a skip
    of every file, with the reason."""
    from .probe import _reasons, apply_probe
    from .judge import ScenarioResult

    from .probe import _cpu

    caps = guest_caps(kernel)
    caps.cpu = f"QEMU TCG -cpu max (emulated) on {_cpu()}"
    _reasons(caps, ())
    prepared = []
    for path in ([] if probe_only else files):
        prepared.append(prepare(path, caps, era))
    plans = [plan.text for _, plan, _ in prepared if plan is not None]
    t0 = time.perf_counter()
    try:
        vmlinuz = fetch_kernel(kernel)
        with tempfile.TemporaryDirectory(prefix="thpviz-qemu-") as tmpname:
            tmp = Path(tmpname)
            build_initramfs(tmp / "initrd.gz", plans, with_costs)
            if timeout is None:
                timeout = 120 + 20 * len(plans) + (240 if with_costs else 0)
            console, problem = boot(vmlinuz, tmp / "initrd.gz", tmp / "lab.out", timeout)
            text = (tmp / "lab.out").read_text(errors="replace") if (tmp / "lab.out").exists() else ""
    except (LabUnavailable, OSError, subprocess.SubprocessError) as e:
        caps.reasons["lab"] = f"cannot boot Linux {kernel} under QEMU: {e}"
        results = []
        from .judge import kernel_to_era

        era_id, note = (era, "chosen with --era") if era else kernel_to_era(kernel)
        for path in ([] if probe_only else files):
            results.append(ScenarioResult(path, status="skipped", reason=caps.reasons["lab"], era=era_id,
                                          era_note=note))
        return (caps, results, None) if with_costs else (caps, results)
    boot_seconds = time.perf_counter() - t0
    probe, outputs, costs = split_output(text)
    if probe is None:
        caps.reasons["lab"] = "the guest printed no probe" + (f" ({problem})" if problem else "") + \
            (f"; console: {console.strip()[-300:]}" if console.strip() else "")
    else:
        apply_probe(caps, probe)
        caps.reasons.clear()
        caps.where = f"a QEMU TCG guest with Debian's {kernel} kernel"
        _reasons(caps, ())
    caps.boot_seconds = round(boot_seconds, 1)
    results = []
    i = 0
    for scn, plan, res in prepared:
        if progress:
            progress(res.path)
        if plan is None:
            results.append(res)
            continue
        out = outputs.get(i)
        i += 1
        from .judge import kernel_to_era
        from .plan import needed_features

        if not era:
            res.era, res.era_note = kernel_to_era(caps.release)
        missing = caps.require(*needed_features(scn))
        if missing:
            res.status, res.reason = "skipped", missing
        elif out is None:
            res.status, res.reason = "skipped", f"the guest gave no output for it ({problem or 'no output'})"
        else:
            finish(res, scn, plan, out, caps)
        results.append(res)
    for r in results:
        r.seconds = boot_seconds / max(len(results), 1)
    if with_costs:
        import json
        return caps, results, (json.loads(costs) if costs else None)
    return caps, results
