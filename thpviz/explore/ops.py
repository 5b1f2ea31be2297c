"""Names the explorer's command line needs before anything heavy is
imported: the operations of the alphabet and the goals."""

#: every operation the alphabet knows (statement names of the scenario
#: language; ``pin`` is a read-write pin, ``pin-ro`` a read-only one;
#: ``mprotect`` stands for both ``ro`` and ``rw``)
ALL_OPS = (
    "mmap", "read", "write", "fork", "exit", "munmap", "dontneed", "dontfork", "dofork", "mprotect",
    "mremap", "split_pmd", "split_page", "pin", "pin-ro", "vmsplice", "unpin", "dma_write", "dma_read",
    "deferred_split",
)
#: the default: what the thread's scenarios and the pin-loss catalogue use
#: (``dma_write``: the device writing through a pin, what a stray write is)
DEFAULT_OPS = (
    "mmap", "read", "write", "fork", "exit", "munmap", "mprotect", "split_pmd", "pin", "vmsplice", "unpin",
    "dma_write",
)
#: the violations ``--find`` looks for (DESIGN.md)
GOALS = ("pin-lost", "rmap-broken", "leak", "stray-write", "bug")
