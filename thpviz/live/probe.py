"""What this machine lets the live lab do: ``probe()`` never raises.

Checks, in order: Linux at all; the THP settings in /sys; root and
CAP_SYS_ADMIN (without it /proc/PID/pagemap reads every PFN as 0 and
/proc/kpageflags is closed, so nothing can be told apart -- the lab skips
rather than pass on zeros); kernel.io_uring_disabled; then the executor's own
probe on the kernel itself: are PFNs visible, does a MADV_HUGEPAGE fault give
a PMD-mapped THP, is kpageflags' anon-exclusive bit (34) per page (6.1) or
per folio (6.9+), is kpagecount precise (CONFIG_PAGE_MAPCOUNT, and every
kernel before 6.15) or a per-folio average, does PAGEMAP_SCAN exist (6.7+),
can io_uring register a buffer, can a thread hold a read-only pin through
process_vm_readv into a userfaultfd-missing page.

Tests simulate a poorer machine with ``simulate`` (or the environment
variable ``THPVIZ_LIVE_SIMULATE``): a comma-separated subset of
``nonlinux``, ``noroot``, ``zeropfn``, ``nothp``, ``nouring``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field

SIMULATIONS = ("nonlinux", "noroot", "zeropfn", "nothp", "nouring")
THP_SYS = "/sys/kernel/mm/transparent_hugepage"


@dataclass
class Capabilities:
    linux: bool = False
    release: str = ""
    machine: str = ""
    cpu: str = ""
    where: str = "host"
    root: bool = False
    cap_sys_admin: bool = False
    thp_mode: str | None = None          # always | madvise | never | None (no THP in this kernel)
    thp_pmd_mode: str | None = None      # hugepages-2048kB/enabled (inherit | ...)
    use_zero_page: bool | None = None
    process_thp_disabled: bool = False
    io_uring_disabled: int | None = None
    page_size: int = 0
    pmd_subpages: int = 0
    # from the executor's probe of the kernel itself
    executor: str | None = None
    pfn_visible: bool = False
    kpageflags: bool = False
    pagemap_scan: bool = False
    thp: str = "none"                    # pmd | pte | none: what a MADV_HUGEPAGE fault gave
    thp_fault_ns: int | None = None
    anon_exclusive_flags: str = "unknown"  # page | folio | none | unknown
    kpagecount: str = "unknown"          # precise | average | unknown
    io_uring: str = "not probed"         # ok | the reason
    pin_ro: str = "not probed"           # ok | the reason
    split_huge_pages: bool = False       # debugfs split_huge_pages is there
    allow_global: bool = False           # a guest of ours: drop_caches may run
    simulated: tuple = ()
    reasons: dict = field(default_factory=dict)

    # --------------------------------------------------------------- verdicts
    def require(self, *features: str) -> str | None:
        """A skip reason if any of ``features`` is missing, else None.
        Features: ``lab``, ``thp``, ``pin_rw``, ``pin_ro``, ``split_page``,
        ``deferred_split``."""
        for f in ("lab",) + tuple(x for x in features if x != "lab"):
            r = self.reasons.get(f)
            if r:
                return r
        return None

    def to_json(self) -> dict:
        d = asdict(self)
        d["simulated"] = list(self.simulated)
        return d

    def describe(self) -> list[str]:
        """Lines for ``thpviz live --probe``."""
        def yn(b):
            return "yes" if b else "no"
        out = [
            f"where:              {self.where}" + (f" (simulated: {', '.join(self.simulated)})" if self.simulated else ""),
            f"Linux:              {yn(self.linux)} {self.release}",
            f"CPU:                {self.cpu or '?'}",
            f"root:               {yn(self.root)} (CAP_SYS_ADMIN: {yn(self.cap_sys_admin)})",
            f"PFNs visible:       {yn(self.pfn_visible)}" + ("" if self.pfn_visible else " (pagemap reads PFN 0 without CAP_SYS_ADMIN)"),
            f"kpageflags:         {yn(self.kpageflags)}",
            f"THP:                {self.thp_mode or 'not in this kernel'}"
            + (f", PMD size {self.thp_pmd_mode}" if self.thp_pmd_mode and self.thp_pmd_mode != 'inherit' else "")
            + (", disabled for this process (prctl)" if self.process_thp_disabled else "")
            + (f"; a MADV_HUGEPAGE fault gave: {self.thp}" if self.executor else ""),
            f"PAGEMAP_SCAN:       {yn(self.pagemap_scan)}" + ("" if self.pagemap_scan or not self.executor else " (PMD mapping read from smaps AnonHugePages)"),
            f"anon-exclusive bit: {self.anon_exclusive_flags}"
            + {"page": " (kpageflags bit 34 per page)", "folio": " (kpageflags bit 34 of the folio's head)",
               "none": " (no PageAnonExclusive before 5.19)"}.get(self.anon_exclusive_flags, ""),
            f"kpagecount:         {self.kpagecount}"
            + {"precise": " (per-page mapcount: CONFIG_PAGE_MAPCOUNT or a kernel before 6.15)",
               "average": " (CONFIG_NO_PAGE_MAPCOUNT: a per-folio average)"}.get(self.kpagecount, ""),
            f"io_uring:           {self.io_uring}",
            f"read-only pin:      {self.pin_ro}",
            f"split_huge_pages:   {yn(self.split_huge_pages)}",
        ]
        for feat, why in self.reasons.items():
            if why:
                out.append(f"cannot run [{feat}]: {why}")
        return out


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _bracketed(text: str | None) -> str | None:
    if text is None:
        return None
    for w in text.split():
        if w.startswith("[") and w.endswith("]"):
            return w[1:-1]
    return text.strip() or None


def _cpu() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _simulated(simulate) -> tuple:
    if simulate is None:
        simulate = os.environ.get("THPVIZ_LIVE_SIMULATE", "")
    if isinstance(simulate, str):
        simulate = [s.strip() for s in simulate.split(",") if s.strip()]
    bad = [s for s in simulate if s not in SIMULATIONS]
    if bad:
        raise ValueError(f"unknown simulation {bad[0]!r} (known: {', '.join(SIMULATIONS)})")
    return tuple(simulate)


def probe(simulate=None, run_executor: bool = True, timeout: float = 60) -> Capabilities:
    """Probe this machine (see the module docstring).  Never raises, except
    ValueError for an unknown simulation name."""
    sim = _simulated(simulate)
    c = Capabilities(simulated=sim)
    c.linux = sys.platform.startswith("linux") and "nonlinux" not in sim
    c.release = platform.release()
    c.machine = platform.machine()
    if not c.linux:
        c.reasons["lab"] = (f"the live lab needs Linux (/proc/PID/pagemap, /proc/kpageflags); "
                            f"this is {'a simulated non-Linux system' if 'nonlinux' in sim else sys.platform}")
        return c
    c.cpu = _cpu()
    c.root = os.geteuid() == 0 and "noroot" not in sim
    status = _read("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            c.cap_sys_admin = bool(int(line.split()[1], 16) & (1 << 21)) and "noroot" not in sim
        if line.startswith("THP_enabled:"):
            c.process_thp_disabled = line.split()[1] == "0"
    if "zeropfn" in sim:
        c.cap_sys_admin = False
    c.thp_mode = _bracketed(_read(f"{THP_SYS}/enabled"))
    c.thp_pmd_mode = _bracketed(_read(f"{THP_SYS}/hugepages-2048kB/enabled"))
    zp = _read(f"{THP_SYS}/use_zero_page")
    c.use_zero_page = None if zp is None else zp == "1"
    if "nothp" in sim:
        c.thp_mode = "never"
    iud = _read("/proc/sys/kernel/io_uring_disabled")
    c.io_uring_disabled = int(iud) if iud and iud.isdigit() else None
    if "nouring" in sim:
        c.io_uring_disabled = 2
    c.page_size = os.sysconf("SC_PAGE_SIZE")
    pmd = _read(f"{THP_SYS}/hpage_pmd_size")
    c.pmd_subpages = int(pmd) // c.page_size if pmd and pmd.isdigit() else 0

    if run_executor:
        _probe_kernel(c, sim, timeout)
    _reasons(c, sim)
    return c


def _probe_kernel(c: Capabilities, sim: tuple, timeout: float) -> None:
    from .build import LabUnavailable, executor_path

    try:
        exe = executor_path()
    except LabUnavailable as e:
        c.reasons["executor"] = str(e)
        return
    except OSError as e:
        c.reasons["executor"] = f"cannot build the lab's executor: {e}"
        return
    c.executor = str(exe)
    try:
        r = subprocess.run([str(exe), "probe"], capture_output=True, text=True, timeout=timeout,
                           start_new_session=True)
        data = json.loads(r.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, OSError, ValueError, IndexError) as e:
        c.reasons["executor"] = f"the lab's executor failed its probe: {e}"
        return
    apply_probe(c, data, sim)


def apply_probe(c: Capabilities, data: dict, sim: tuple = ()) -> None:
    """Fill ``c`` from the executor's probe record (host or guest)."""
    c.release = data.get("release", c.release)
    c.machine = data.get("machine", c.machine)
    c.pfn_visible = bool(data.get("pfn_visible")) and not ({"noroot", "zeropfn"} & set(sim))
    c.kpageflags = bool(data.get("kpageflags")) and not ({"noroot", "zeropfn"} & set(sim))
    c.pagemap_scan = bool(data.get("pagemap_scan"))
    c.thp = "none" if "nothp" in sim else data.get("thp", "none")
    c.thp_fault_ns = data.get("thp_fault_ns")
    c.anon_exclusive_flags = data.get("anon_exclusive_flags", "unknown")
    c.kpagecount = data.get("kpagecount", "unknown")
    c.io_uring = "disabled (simulated: kernel.io_uring_disabled = 2)" if "nouring" in sim else data.get("io_uring", "?")
    c.pin_ro = data.get("pin_ro", "?")
    c.split_huge_pages = bool(data.get("split_huge_pages"))
    if "pagesize" in data:
        c.page_size = data["pagesize"]


def _reasons(c: Capabilities, sim: tuple) -> None:
    r = c.reasons
    if not (c.root or c.cap_sys_admin) or not c.pfn_visible or not c.kpageflags:
        if not c.root and not c.cap_sys_admin:
            r["lab"] = ("not root: /proc/PID/pagemap reads every PFN as 0 and /proc/kpageflags is closed "
                        "without CAP_SYS_ADMIN, so the lab cannot tell pages apart (it never judges on zeros)")
        elif "executor" in r:
            r["lab"] = r["executor"]
        else:
            r["lab"] = ("PFNs read as 0 (no CAP_SYS_ADMIN in this container or user namespace?): the lab "
                        "cannot tell pages apart and never judges on zeros")
    if "executor" in r and "lab" not in r:
        r["lab"] = r["executor"]
    if c.page_size != 4096 or (c.pmd_subpages and c.pmd_subpages != 512):
        r.setdefault("lab", f"only 4 KiB pages with 2 MiB THPs are supported (page size {c.page_size})")
    if c.thp_mode is None:
        r["thp"] = "this kernel has no transparent huge pages (no /sys/kernel/mm/transparent_hugepage)"
    elif c.thp_mode == "never":
        r["thp"] = "THP disabled (transparent_hugepage/enabled = never); ask an admin for madvise"
    elif c.process_thp_disabled:
        r["thp"] = "THP disabled for this process (prctl PR_SET_THP_DISABLE, e.g. by systemd or a container)"
    elif c.executor and c.thp != "pmd" and "lab" not in r:
        r["thp"] = (f"a MADV_HUGEPAGE fault did not give a PMD-mapped THP ({c.thp}): no free 2 MiB block "
                    "(fragmentation or a memory cgroup limit)")
    if c.io_uring_disabled == 2:
        r["pin_rw"] = "io_uring is disabled (kernel.io_uring_disabled = 2): no read-write pin (fixed buffer)"
    elif c.io_uring not in ("ok", "not probed"):
        r["pin_rw"] = f"io_uring cannot pin a buffer here: {c.io_uring}"
    if c.pin_ro not in ("ok", "not probed"):
        r["pin_ro"] = f"no read-only pin (process_vm_readv into a userfaultfd-missing page): {c.pin_ro}"
    if not c.split_huge_pages:
        r["split_page"] = ("split_huge_page has no user-space trigger without debugfs' split_huge_pages "
                           "(not mounted here; thpviz does not mount it on a host)")
    if not c.allow_global:
        r["deferred_split"] = ("running the deferred-split shrinker needs a global drop_caches; thpviz "
                               "does that only inside its QEMU guests")
