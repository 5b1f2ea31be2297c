"""The live lab: run a ``.thp`` scenario on the running kernel (or on a Debian
kernel booted under QEMU) and judge it like ``thpviz check`` does.

Every decision and violation here is derived from what the kernel shows --
PFNs in ``/proc/PID/pagemap``, PMD or PTE mapping (``PAGEMAP_SCAN``, or the
VMA's ``AnonHugePages`` before 6.7), ``/proc/kpageflags`` (PageAnonExclusive
is bit 34), ``/proc/kpagecount``, minor-fault counts, and the data a device
(an io_uring fixed buffer) or a pipe (vmsplice) reads -- never from the model.
The model's verdicts are printed beside the kernel's.

Modules: :mod:`.build` (the C executor, built on demand), :mod:`.probe`
(what this machine allows), :mod:`.plan` (scenario -> executor plan, or a
skip reason), :mod:`.observe` (executor output -> decisions and
violations), :mod:`.judge` (kernel -> era, live vs expect vs model),
:mod:`.host` (run on this kernel), :mod:`.qemu` (run in a guest),
:mod:`.costs` (fault timings), :mod:`.record` (``data/measured/live-*.json``),
:mod:`.cli_live` (``thpviz live``).  docs/live-lab.md describes the method.

Nothing here is imported by ``import thpviz``; importing this package does
not touch the kernel.
"""
