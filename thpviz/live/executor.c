/*
 * thpviz live lab executor: runs one compiled .thp scenario on the running
 * kernel with one real process per scenario process, and prints what it
 * observes as JSON lines.  The same static binary runs on the host and in
 * the QEMU guests (which have no Python).  thpviz (Python) compiles a
 * scenario into a plan (thpviz/live/plan.py), pipes it in, and derives every
 * decision and violation from the printed observations.
 *
 *   thpviz-lab run   < PLAN     one scenario
 *   thpviz-lab probe            what this kernel lets us observe
 *   thpviz-lab costs [REPEATS]  fault and fork timings
 *
 * Processes: an orchestrator (this process) reads the plan, forks one worker
 * per root process and talks to every worker over its own AF_UNIX
 * SOCK_SEQPACKET pair; "fork C" makes the worker of P call fork(), and the
 * child becomes C's worker.  Workers print their own observations (fault
 * records) to stdout before they reply; the orchestrator takes a snapshot of
 * every live process after each step from /proc/PID/pagemap, PAGEMAP_SCAN
 * (or the VMA's AnonHugePages in /proc/PID/smaps before 6.7),
 * /proc/kpageflags and /proc/kpagecount.
 *
 * Kernel-side mapping (docs/live-lab.md has the reasons):
 *   pin rw    io_uring IORING_REGISTER_BUFFERS (FOLL_WRITE|FOLL_PIN|FOLL_LONGTERM),
 *             raw syscalls, no liburing; the ring belongs to the orchestrator
 *             (the "device"), so the pin outlives its owner as vfio's would;
 *             dma_read = IORING_OP_WRITE_FIXED to a memfd, dma_write =
 *             IORING_OP_READ_FIXED from it.
 *   pin ro    a thread of the owner blocks in process_vm_readv(self) with the
 *             remote range pinned (pin_user_pages_remote, FOLL_PIN without
 *             FOLL_WRITE) while the local buffer is a userfaultfd-missing
 *             page; dma_read = UFFDIO_COPY, after which the copy completes
 *             with what the pinned pages hold and the pin is released.
 *   vmsplice  vmsplice(2) into pipes the orchestrator keeps (FOLL_GET
 *             references); dma_read = tee(2) + read.
 *   split_pmd a VMA split at one subpage (MADV_DONTFORK then MADV_DOFORK, or
 *             the reverse), which makes the kernel split the PMD.
 *
 * Every write stores a 16-byte stamp (magic, step, writer, subpage) at the
 * start of each 4 KiB subpage, so device and pipe views can be attributed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/io_uring.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAXP 32          /* processes per scenario */
#define MAXR 64          /* region ids */
#define MAXPIN 32
#define REGION_BASE 0x600000000000UL
#define REGION_STRIDE 0x10000000UL /* 256 MiB per region id */
#define UFFD_BASE 0x680000000000UL
#define STAMP_MAGIC 0x56504854u /* "THPV" */
#define DEVICE_WRITER 1000

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

/* PAGEMAP_SCAN (6.7), defined here because the build headers may be older */
struct pm_scan_arg_ {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region_ { uint64_t start, end, categories; };
#define PAGEMAP_SCAN_ _IOWR('f', 16, struct pm_scan_arg_)
#define PAGE_IS_PRESENT_ (1 << 3)
#define PAGE_IS_PFNZERO_ (1 << 5)
#define PAGE_IS_HUGE_ (1 << 6)

#define KPF_MMAP 11
#define KPF_ANON 12
#define KPF_HEAD 15
#define KPF_TAIL 16
#define KPF_THP 22
#define KPF_ZERO 24
#define KPF_EXCL 34
static const uint64_t KF_MASK = (1ULL << KPF_MMAP) | (1ULL << KPF_ANON) | (1ULL << KPF_HEAD) |
                                (1ULL << KPF_TAIL) | (1ULL << KPF_THP) | (1ULL << KPF_ZERO) |
                                (1ULL << KPF_EXCL);

static unsigned long NR = 512; /* subpages per THP */
static int have_scan = -1;     /* PAGEMAP_SCAN works */
static int kpf_fd = -1, kpc_fd = -1;

/* ------------------------------------------------------------------ output */
struct sb { char *p; size_t n, cap; };
static void sb_put(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->p && (size_t)k < room) { b->n += k; return; }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + k + 1) nc *= 2;
        b->p = realloc(b->p, nc);
        b->cap = nc;
    }
}
static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) { if (errno == EINTR) continue; return; }
        p += k; n -= k;
    }
}
static void sb_flush(struct sb *b)
{
    sb_put(b, "\n");
    write_all(1, b->p, b->n);
    b->n = 0;
}
static void emit(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf - 2, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (k > (int)sizeof buf - 2) k = sizeof buf - 2;
    buf[k++] = '\n';
    write_all(1, buf, k);
}
static void json_str(struct sb *b, const char *s)
{
    sb_put(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') sb_put(b, "\\%c", *s);
        else if ((unsigned char)*s < 32) sb_put(b, " ");
        else sb_put(b, "%c", *s);
    }
    sb_put(b, "\"");
}

/* ---------------------------------------------------------------- helpers */
static long minflt_thread(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_minflt;
}
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}
static int pread_all(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (char *)buf + got, n - got, off + got);
        if (k < 0) { if (errno == EINTR) continue; return -1; }
        if (k == 0) break;
        got += k;
    }
    return got == n ? 0 : -1;
}
static uint64_t kflags(uint64_t pfn)
{
    uint64_t v = 0;
    if (kpf_fd < 0 || pread_all(kpf_fd, &v, 8, pfn * 8)) return 0;
    return v;
}
static uint64_t kcount(uint64_t pfn)
{
    uint64_t v = 0;
    if (kpc_fd < 0 || pread_all(kpc_fd, &v, 8, pfn * 8)) return 0;
    return v;
}
#define PM_PRESENT(e) (((e) >> 63) & 1)
#define PM_PFN(e) ((e) & ((1ULL << 55) - 1))
#define PM_EXCL(e) (((e) >> 56) & 1)

/* Mapping level of n subpages at addr in the mm of pagemap fd pmfd:
 * 0 not present, 1 PTE, 2 PMD, 3 zero page by PTE, 4 huge zero page by PMD,
 * -1 unknown.  PAGEMAP_SCAN when the kernel has it; otherwise the VMA's
 * AnonHugePages in smaps (pid) decides for each THP-shaped extent. */
static int smaps_anonhuge(int pid, unsigned long addr, unsigned long *vs, unsigned long *ve);
static void levels(int pmfd, int pid, unsigned long addr, unsigned long n, const uint64_t *pm, int *out)
{
    for (unsigned long i = 0; i < n; i++) out[i] = PM_PRESENT(pm[i]) ? 1 : 0;
    if (have_scan) {
        struct page_region_ *vec = calloc(n + 1, sizeof *vec);
        struct pm_scan_arg_ a = {0};
        a.size = sizeof a;
        a.start = addr;
        a.end = addr + n * PAGE;
        a.vec = (uint64_t)(uintptr_t)vec;
        a.vec_len = n + 1;
        a.category_anyof_mask = PAGE_IS_PRESENT_;
        a.return_mask = PAGE_IS_PRESENT_ | PAGE_IS_HUGE_ | PAGE_IS_PFNZERO_;
        long k = ioctl(pmfd, PAGEMAP_SCAN_, &a);
        if (k >= 0) {
            for (long j = 0; j < k; j++) {
                for (uint64_t va = vec[j].start; va < vec[j].end; va += PAGE) {
                    unsigned long i = (va - addr) / PAGE;
                    if (i >= n) continue;
                    int huge = (vec[j].categories & PAGE_IS_HUGE_) != 0;
                    int zero = (vec[j].categories & PAGE_IS_PFNZERO_) != 0;
                    out[i] = zero ? (huge ? 4 : 3) : (huge ? 2 : 1);
                }
            }
            free(vec);
            return;
        }
        free(vec);
        if (errno == ENOTTY || errno == EINVAL) have_scan = 0;
    }
    /* fallback: zero pages from kpageflags, PMDs from smaps */
    for (unsigned long i = 0; i < n; i++) {
        if (!PM_PRESENT(pm[i])) continue;
        uint64_t kf = kflags(PM_PFN(pm[i]));
        if (kf & (1ULL << KPF_ZERO)) out[i] = (kf & (1ULL << KPF_THP)) ? 4 : 3;
    }
    unsigned long big = PAGE * NR;
    unsigned long first = (addr + big - 1) & ~(big - 1);
    for (unsigned long ext = first; ext + big <= addr + n * PAGE; ext += big) {
        unsigned long i0 = (ext - addr) / PAGE;
        if (out[i0] == 4) continue;
        uint64_t p0 = PM_PFN(pm[i0]);
        int cand = PM_PRESENT(pm[i0]) && p0 && (p0 % NR) == 0;
        for (unsigned long j = 1; cand && j < NR; j++)
            cand = PM_PRESENT(pm[i0 + j]) && PM_PFN(pm[i0 + j]) == p0 + j;
        if (!cand) continue;
        unsigned long vs, ve;
        int kb = smaps_anonhuge(pid, ext, &vs, &ve);
        int lvl;
        if (kb <= 0) lvl = 1;
        else {
            /* count THP-shaped extents of this VMA: unambiguous only when
             * AnonHugePages accounts for all of them */
            unsigned long ncand = 0;
            for (unsigned long e2 = (vs + big - 1) & ~(big - 1); e2 + big <= ve; e2 += big) {
                uint64_t q[2];
                if (e2 >= addr && e2 + big <= addr + n * PAGE) {
                    unsigned long k0 = (e2 - addr) / PAGE;
                    uint64_t b0 = PM_PFN(pm[k0]);
                    int c = PM_PRESENT(pm[k0]) && b0 && b0 % NR == 0;
                    for (unsigned long j = 1; c && j < NR; j++)
                        c = PM_PRESENT(pm[k0 + j]) && PM_PFN(pm[k0 + j]) == b0 + j;
                    ncand += c;
                } else {
                    (void)q;
                    ncand += 1000; /* outside what we read: ambiguous */
                }
            }
            lvl = ((unsigned long)kb == ncand * (big / 1024)) ? 2 : -1;
        }
        for (unsigned long j = 0; j < NR; j++) out[i0 + j] = lvl;
    }
}
static int smaps_anonhuge(int pid, unsigned long addr, unsigned long *vs, unsigned long *ve)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/smaps", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int inside = 0, kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') && line[0] != ' ') {
            if (inside) break;
            inside = addr >= s && addr < e;
            if (inside) { *vs = s; *ve = e; }
            continue;
        }
        if (inside && !strncmp(line, "AnonHugePages:", 14)) {
            kb = atoi(line + 14);
        }
    }
    fclose(f);
    return kb;
}

/* ----------------------------------------------------------------- io_uring */
struct ring {
    int fd;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    void *sq_ptr, *cq_ptr;
    size_t sq_len, cq_len, sqe_len;
};
static int ring_setup(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    memset(r, 0, sizeof *r);
    r->fd = syscall(__NR_io_uring_setup, 4, &p);
    if (r->fd < 0) return -errno;
    r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    r->sq_ptr = mmap(0, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    r->cq_ptr = mmap(0, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
    r->sqe_len = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(0, r->sqe_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sq_ptr == MAP_FAILED || r->cq_ptr == MAP_FAILED || r->sqes == MAP_FAILED) {
        int e = errno;
        close(r->fd);
        return -e;
    }
    r->sq_tail = (unsigned *)((char *)r->sq_ptr + p.sq_off.tail);
    r->sq_mask = (unsigned *)((char *)r->sq_ptr + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)((char *)r->sq_ptr + p.sq_off.array);
    r->cq_head = (unsigned *)((char *)r->cq_ptr + p.cq_off.head);
    r->cq_tail = (unsigned *)((char *)r->cq_ptr + p.cq_off.tail);
    r->cq_mask = (unsigned *)((char *)r->cq_ptr + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)((char *)r->cq_ptr + p.cq_off.cqes);
    return 0;
}
static void ring_close(struct ring *r)
{
    if (r->fd < 0) return;
    munmap(r->sq_ptr, r->sq_len);
    munmap(r->cq_ptr, r->cq_len);
    munmap(r->sqes, r->sqe_len);
    close(r->fd);
    r->fd = -1;
}
/* one fixed-buffer I/O: op READ_FIXED (file -> buffer) or WRITE_FIXED */
static long ring_rw(struct ring *r, int op, int filefd, unsigned long addr, unsigned long len, off_t off)
{
    unsigned tail = __atomic_load_n(r->sq_tail, __ATOMIC_ACQUIRE);
    unsigned idx = tail & *r->sq_mask;
    struct io_uring_sqe *s = &r->sqes[idx];
    memset(s, 0, sizeof *s);
    s->opcode = op;
    s->fd = filefd;
    s->addr = addr;
    s->len = len;
    s->off = off;
    s->buf_index = 0;
    r->sq_array[idx] = idx;
    __atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
    long k = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (k < 0) return -errno;
    unsigned head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
    for (int spin = 0; head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE); spin++) {
        if (spin > 1000000) return -ETIMEDOUT;
        syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    }
    long res = r->cqes[head & *r->cq_mask].res;
    __atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
    return res;
}

/* ------------------------------------------------------- fd passing (SCM) */
static int send_msg(int sock, const char *text, const int *fds, int nfds)
{
    struct iovec iov = {(void *)text, strlen(text) + 1};
    char cbuf[CMSG_SPACE(sizeof(int) * 64)];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (nfds > 0) {
        m.msg_control = cbuf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t k = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (k >= 0) return 0;
        if (errno != EINTR) return -1;
    }
}
/* receive one message; returns its length, 0 on EOF, -1 on error/timeout */
static int recv_msg(int sock, char *text, size_t cap, int *fds, int *nfds, int timeout_ms)
{
    struct pollfd pf = {sock, POLLIN, 0};
    for (;;) {
        int k = poll(&pf, 1, timeout_ms);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        break;
    }
    struct iovec iov = {text, cap - 1};
    char cbuf[CMSG_SPACE(sizeof(int) * 64)];
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = cbuf;
    m.msg_controllen = sizeof cbuf;
    ssize_t k;
    do k = recvmsg(sock, &m, MSG_CMSG_CLOEXEC); while (k < 0 && errno == EINTR);
    if (k < 0) return -1;
    text[k] = 0;
    if (nfds) *nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fds && nfds) {
            int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds + *nfds, CMSG_DATA(c), n * sizeof(int));
            *nfds += n;
        }
    }
    return (int)k;
}

/* ================================================================ worker */
struct region { int used; unsigned long base, n; int huge; };
struct ropin {   /* a read-only pin held by a thread in process_vm_readv */
    int used, uffd;
    unsigned long ubase, n, remote;
    pthread_t th;
    long result;
};
static struct region R[MAXR];
static struct ropin RO[MAXPIN];
static int me = -1;            /* scenario process index of this worker */
static int wsock = -1;         /* this worker's socket */
static int pm_self = -1;       /* /proc/self/pagemap of this worker's mm */
static int socks_all[MAXP];    /* every worker-side socket (inherited by forks) */
static int nprocs = 0;
static int cur_step = 0;

static void reopen_pagemap(void)
{
    if (pm_self >= 0) close(pm_self);
    pm_self = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}
static void read_pm(unsigned long addr, unsigned long n, uint64_t *out)
{
    if (pread_all(pm_self, out, n * 8, (addr / PAGE) * 8)) memset(out, 0, n * 8);
}

/* MADV_HUGEPAGE while an access may fault into an extent of [lo,hi) that
 * holds no page in this mm, so a first touch there gets a THP as the
 * scenario's "mmap A" promises; the region is MADV_NOHUGEPAGE at rest, so
 * khugepaged never collapses a range behind the scenario's back.  The whole
 * region is switched, never one extent: madvise on part of a VMA splits it,
 * and the parts need not merge again (a part without an anon_vma does not
 * merge with one that has one), leaving VMA boundaries the scenario never
 * made -- which mremap, for one, refuses to cross before 6.17. */
static int armed[MAXR];
static void arm(int rid, unsigned long lo, unsigned long hi)
{
    struct region *g = &R[rid];
    if (!g->huge) return;
    unsigned long big = PAGE * NR;
    unsigned long a0 = g->base + lo * PAGE, a1 = g->base + hi * PAGE;
    unsigned long rs = g->base, re = g->base + g->n * PAGE;
    for (unsigned long e = a0 & ~(big - 1); e < a1; e += big) {
        unsigned long s = e < rs ? rs : e, t = e + big > re ? re : e + big;
        uint64_t pm[512];
        unsigned long cnt = (t - s) / PAGE;
        int any = 0;
        for (unsigned long off = 0; off < cnt; off += 512) {
            unsigned long m = cnt - off < 512 ? cnt - off : 512;
            read_pm(s + off * PAGE, m, pm);
            for (unsigned long j = 0; j < m; j++) any |= PM_PRESENT(pm[j]);
        }
        if (any) continue;
        /* ENOMEM where the region has holes: the mapped parts are switched */
        madvise((void *)rs, re - rs, MADV_HUGEPAGE);
        armed[rid] = 1;
        return;
    }
}
static void disarm(int rid)
{
    struct region *g = &R[rid];
    if (!g->huge || !armed[rid]) return;
    madvise((void *)g->base, g->n * PAGE, MADV_NOHUGEPAGE);
    armed[rid] = 0;
}

/* A store or load the kernel refuses (an unmapped or read-only address)
 * raises SIGSEGV; the worker reports it as the step's error instead of
 * dying, as the model reports an error event. */
#include <setjmp.h>
static sigjmp_buf segv_env;
static volatile int segv_armed = 0;
static void on_segv(int sig)
{
    if (segv_armed) { segv_armed = 0; siglongjmp(segv_env, 1); }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void fault_record(struct sb *b, int *first, unsigned long sub, uint64_t before, uint64_t after,
                         long nflt, int lvl_before, int lvl_after)
{
    uint64_t kb = PM_PRESENT(before) ? kflags(PM_PFN(before)) & KF_MASK : 0;
    uint64_t ka = PM_PRESENT(after) ? kflags(PM_PFN(after)) & KF_MASK : 0;
    sb_put(b, "%s[%lu,%llu,%llu,%ld,%d,%d,%llu,%llu]", *first ? "" : ",", sub,
           (unsigned long long)before, (unsigned long long)after, nflt, lvl_before, lvl_after,
           (unsigned long long)kb, (unsigned long long)ka);
    *first = 0;
}

/* CPU writes with a fault record for every store that faulted:
 * [subpage, pagemap before, after, faults, level before, level after,
 *  kpageflags before, after] */
static void do_write(int rid, unsigned long lo, unsigned long hi)
{
    struct region *g = &R[rid];
    unsigned long n = hi - lo, a0 = g->base + lo * PAGE;
    uint64_t *pm = malloc(n * 8);
    int *lv = malloc(n * sizeof(int));
    read_pm(a0, n, pm);
    levels(pm_self, getpid(), a0, n, pm, lv);
    struct sb b = {0};
    sb_put(&b, "{\"t\":\"faults\",\"k\":%d,\"p\":%d,\"r\":%d,\"access\":\"write\",\"recs\":[", cur_step, me, rid);
    int first = 1;
    unsigned long nofault = 0;
    volatile unsigned long i = 0;
    long f0 = 0;
    if (sigsetjmp(segv_env, 1)) {
        sb_put(&b, "],\"nofault\":%lu,\"segv\":%lu}", nofault, (unsigned long)(lo + i));
        sb_flush(&b);
        free(b.p);
        free(pm);
        free(lv);
        return;
    }
    segv_armed = 1; /* globals and the stack are written before f0 is read */
    (void)minflt_thread();
    f0 = minflt_thread();
    for (i = 0; i < n; i++) {
        volatile uint32_t *s = (volatile uint32_t *)(a0 + i * PAGE);
        s[0] = STAMP_MAGIC;
        s[1] = cur_step;
        s[2] = me;
        s[3] = lo + i;
        long f1 = minflt_thread();
        if (f1 == f0) { nofault++; continue; }
        /* the fault may have changed this whole extent: re-read it */
        unsigned long big = PAGE * NR;
        unsigned long va = a0 + i * PAGE;
        unsigned long es = va & ~(big - 1), ee = es + big;
        if (es < a0) es = a0;
        if (ee > a0 + n * PAGE) ee = a0 + n * PAGE;
        unsigned long j0 = (es - a0) / PAGE, m = (ee - es) / PAGE;
        uint64_t before = pm[i];
        int lvl_before = lv[i];
        read_pm(es, m, pm + j0);
        levels(pm_self, getpid(), es, m, pm + j0, lv + j0);
        fault_record(&b, &first, lo + i, before, pm[i], f1 - f0, lvl_before, lv[i]);
        f0 = minflt_thread();
    }
    segv_armed = 0;
    sb_put(&b, "],\"nofault\":%lu}", nofault);
    sb_flush(&b);
    free(b.p);
    free(pm);
    free(lv);
}
static void do_read(int rid, unsigned long lo, unsigned long hi)
{
    struct region *g = &R[rid];
    long f0 = minflt_thread();
    volatile unsigned long sum = 0, i = lo;
    if (sigsetjmp(segv_env, 1)) {
        emit("{\"t\":\"faults\",\"k\":%d,\"p\":%d,\"r\":%d,\"access\":\"read\",\"count\":%ld,\"segv\":%lu}",
             cur_step, me, rid, minflt_thread() - f0, (unsigned long)i);
        return;
    }
    segv_armed = 1;
    for (i = lo; i < hi; i++) sum += *(volatile uint32_t *)(g->base + i * PAGE);
    segv_armed = 0;
    emit("{\"t\":\"faults\",\"k\":%d,\"p\":%d,\"r\":%d,\"access\":\"read\",\"count\":%ld,\"sum\":%lu}",
         cur_step, me, rid, minflt_thread() - f0, sum & 1);
}
/* pagemap entries of [lo,hi) before and after a GUP, with the faults taken */
static void gup_record(const char *what, int rid, unsigned long lo, unsigned long n, uint64_t *before, long nflt)
{
    struct region *g = &R[rid];
    uint64_t *after = malloc(n * 8);
    read_pm(g->base + lo * PAGE, n, after);
    struct sb b = {0};
    sb_put(&b, "{\"t\":\"gup\",\"k\":%d,\"p\":%d,\"r\":%d,\"what\":\"%s\",\"lo\":%lu,\"faults\":%ld,\"changed\":[",
           cur_step, me, rid, what, lo, nflt);
    int first = 1;
    for (unsigned long i = 0; i < n; i++) {
        if (before[i] == after[i]) continue;
        uint64_t kb = PM_PRESENT(before[i]) ? kflags(PM_PFN(before[i])) & KF_MASK : 0;
        uint64_t ka = PM_PRESENT(after[i]) ? kflags(PM_PFN(after[i])) & KF_MASK : 0;
        sb_put(&b, "%s[%lu,%llu,%llu,%llu,%llu]", first ? "" : ",", lo + i, (unsigned long long)before[i],
               (unsigned long long)after[i], (unsigned long long)kb, (unsigned long long)ka);
        first = 0;
    }
    sb_put(&b, "]}");
    sb_flush(&b);
    free(b.p);
    free(after);
}

struct pvm_arg { unsigned long local, remote, len; long *result; };
static void *pvm_thread(void *p)
{
    struct ropin *q = p;
    struct iovec l = {(void *)q->ubase, q->n * PAGE}, r = {(void *)q->remote, q->n * PAGE};
    q->result = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
    if (q->result < 0) q->result = -errno;
    return NULL;
}
static int ropin_take(int pid_, int rid, unsigned long lo, unsigned long hi, char *err, size_t errlen)
{
    struct region *g = &R[rid];
    struct ropin *q = &RO[pid_];
    memset(q, 0, sizeof *q);
    q->n = hi - lo;
    q->remote = g->base + lo * PAGE;
    q->ubase = UFFD_BASE + (unsigned long)pid_ * REGION_STRIDE;
    q->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (q->uffd < 0) { snprintf(err, errlen, "userfaultfd: %s", strerror(errno)); return -1; }
    struct uffdio_api api = {.api = UFFD_API, .features = 0};
    if (ioctl(q->uffd, UFFDIO_API, &api)) { snprintf(err, errlen, "UFFDIO_API: %s", strerror(errno)); goto fail; }
    void *u = mmap((void *)q->ubase, q->n * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (u == MAP_FAILED) { snprintf(err, errlen, "mmap uffd area: %s", strerror(errno)); goto fail; }
    madvise(u, q->n * PAGE, MADV_NOHUGEPAGE);
    struct uffdio_register reg = {.range = {q->ubase, q->n * PAGE}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(q->uffd, UFFDIO_REGISTER, &reg)) { snprintf(err, errlen, "UFFDIO_REGISTER: %s", strerror(errno)); goto fail; }
    if (pthread_create(&q->th, NULL, pvm_thread, q)) { snprintf(err, errlen, "pthread_create failed"); goto fail; }
    q->used = 1;
    /* wait until the thread blocks on the missing page: the pin is held then */
    struct pollfd pf = {q->uffd, POLLIN, 0};
    uint64_t t0 = now_ns();
    for (;;) {
        int k = poll(&pf, 1, 100);
        if (k > 0) break;
        if (q->result != 0 || now_ns() - t0 > 10000000000ULL) {
            snprintf(err, errlen, "process_vm_readv did not block (result %ld)", q->result);
            return -1;
        }
    }
    struct uffd_msg msg;
    if (read(q->uffd, &msg, sizeof msg) != sizeof msg || msg.event != UFFD_EVENT_PAGEFAULT) {
        snprintf(err, errlen, "unexpected userfaultfd message");
        return -1;
    }
    return 0;
fail:
    close(q->uffd);
    return -1;
}
/* let the blocked copy finish (it copies what the pinned pages hold now),
 * release the pin; stamps of what was read go to out (n entries) */
static int ropin_release(int pid_, uint64_t *stamps)
{
    struct ropin *q = &RO[pid_];
    if (!q->used) return -1;
    void *zero = calloc(q->n, PAGE);
    struct uffdio_copy c = {.dst = q->ubase, .src = (uint64_t)(uintptr_t)zero, .len = q->n * PAGE, .mode = 0};
    int rc = ioctl(q->uffd, UFFDIO_COPY, &c);
    free(zero);
    pthread_join(q->th, NULL);
    if (stamps)
        for (unsigned long i = 0; i < q->n; i++) {
            uint32_t *s = (uint32_t *)(q->ubase + i * PAGE);
            stamps[i] = s[0] == STAMP_MAGIC ? ((uint64_t)s[1] << 32) | s[2] : (uint64_t)-1;
        }
    munmap((void *)q->ubase, q->n * PAGE);
    close(q->uffd);
    q->used = 0;
    return rc == 0 && q->result == (long)(q->n * PAGE) ? 0 : -1;
}

static int splitpages(int pid, unsigned long a0, unsigned long a1, char *err, size_t errlen)
{
    int fd = open("/sys/kernel/debug/split_huge_pages", O_WRONLY);
    if (fd < 0) { snprintf(err, errlen, "split_huge_pages: %s", strerror(errno)); return -1; }
    char buf[128];
    int k = snprintf(buf, sizeof buf, "%d,0x%lx,0x%lx", pid, a0, a1);
    int rc = write(fd, buf, k) == k ? 0 : -1;
    if (rc) snprintf(err, errlen, "split_huge_pages write: %s", strerror(errno));
    close(fd);
    return rc;
}

static void peek_stamps(struct sb *b, int rid, unsigned long lo, unsigned long hi)
{
    /* the CPU view of this process: stamps of present subpages only (a read
     * of a non-present page would fault and change the state) */
    struct region *g = &R[rid];
    unsigned long n = hi - lo;
    uint64_t *pm = malloc(n * 8);
    read_pm(g->base + lo * PAGE, n, pm);
    for (unsigned long i = 0; i < n; i++) {
        long v = -2;
        if (PM_PRESENT(pm[i])) {
            volatile uint32_t *s = (volatile uint32_t *)(g->base + (lo + i) * PAGE);
            v = s[0] == STAMP_MAGIC ? (long)s[1] * 10000 + s[2] : -1;
        }
        sb_put(b, "%s%ld", i ? "," : "", v);
    }
    free(pm);
}

/* After a fork the stack is shared copy-on-write with the child: write to
 * it before counting faults, so the first measured store is not charged
 * with a COW fault of the stack (getrusage writes its result there). */
static void __attribute__((noinline)) touch_stack(void)
{
    volatile char buf[32768];
    for (size_t i = 0; i < sizeof buf; i += 512) buf[i] = 0;
    (void)minflt_thread();
}

/* After fork every stack page is shared copy-on-write with the other
 * process, so the first store to one is a fault of its own; the fault
 * counters around a measured access must not include it.  Store to every
 * page from here to the top of the stack ([stack] in /proc/self/maps) at
 * once, which covers worker_loop's own frame (touch_stack covers what lies
 * below it). */
static void __attribute__((noinline)) privatize_stack(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[512];
    unsigned long lo = 0, hi = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "[stack]")) { sscanf(line, "%lx-%lx", &lo, &hi); break; }
    fclose(f);
    unsigned long sp = (unsigned long)__builtin_frame_address(0) & ~(PAGE - 1);
    if (!lo || sp < lo || sp >= hi) return;
    for (unsigned long p = sp; p < hi; p += PAGE) {
        volatile char *q = (volatile char *)p;
        *q = *q;
    }
}

static void worker_loop(void)
{
    char cmd[512], err[256];
    int fds[64], nfds;
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    for (;;) {
        int k = recv_msg(wsock, cmd, sizeof cmd, fds, &nfds, -1);
        if (k <= 0) _exit(0); /* the orchestrator is gone */
        char op[32] = "";
        long a[8] = {0};
        int na = sscanf(cmd, "%31s %d %ld %ld %ld %ld %ld %ld %ld %ld", op, &cur_step, &a[0], &a[1], &a[2], &a[3],
                        &a[4], &a[5], &a[6], &a[7]);
        (void)na;
        err[0] = 0;
        int rc = 0;
        touch_stack();
        int rid = (int)a[0];
        unsigned long lo = a[1], hi = a[2];
        struct region *g = &R[rid];
        if (!strcmp(op, "mmap")) {
            /* mmap <k> rid nsub huge */
            unsigned long n = a[1];
            void *p = mmap((void *)(REGION_BASE + rid * REGION_STRIDE), n * PAGE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) { rc = -1; snprintf(err, sizeof err, "mmap: %s", strerror(errno)); }
            else {
                R[rid] = (struct region){1, (unsigned long)p, n, (int)a[2]};
                madvise(p, n * PAGE, MADV_NOHUGEPAGE);
            }
        } else if (!strcmp(op, "write")) {
            arm(rid, lo, hi);
            do_write(rid, lo, hi);
            disarm(rid);
        } else if (!strcmp(op, "read")) {
            arm(rid, lo, hi);
            do_read(rid, lo, hi);
            disarm(rid);
        } else if (!strcmp(op, "munmap")) {
            rc = munmap((void *)(g->base + lo * PAGE), (hi - lo) * PAGE);
        } else if (!strcmp(op, "dontneed")) {
            rc = madvise((void *)(g->base + lo * PAGE), (hi - lo) * PAGE, MADV_DONTNEED);
        } else if (!strcmp(op, "dontfork")) {
            rc = madvise((void *)(g->base + lo * PAGE), (hi - lo) * PAGE, MADV_DONTFORK);
        } else if (!strcmp(op, "dofork")) {
            rc = madvise((void *)(g->base + lo * PAGE), (hi - lo) * PAGE, MADV_DOFORK);
        } else if (!strcmp(op, "mprotect")) {
            rc = mprotect((void *)(g->base + lo * PAGE), (hi - lo) * PAGE, a[3] ? PROT_READ | PROT_WRITE : PROT_READ);
        } else if (!strcmp(op, "mremap")) {
            /* mremap <k> rid lo hi newrid aligned */
            int nr = (int)a[3];
            unsigned long dst = REGION_BASE + nr * REGION_STRIDE + ((g->base / PAGE + lo) % NR) * PAGE +
                                (a[4] ? 0 : PAGE);
            void *p = mremap((void *)(g->base + lo * PAGE), (hi - lo) * PAGE, (hi - lo) * PAGE,
                             MREMAP_MAYMOVE | MREMAP_FIXED, (void *)dst);
            if (p == MAP_FAILED) { rc = -1; snprintf(err, sizeof err, "mremap: %s", strerror(errno)); }
            else R[nr] = (struct region){1, dst, hi - lo, g->huge};
        } else if (!strcmp(op, "split_pmd")) {
            /* split_pmd <k> rid lo hi mask: for every PMD-mapped extent of
             * [lo,hi) (a THP or the huge zero page, which the split maps by
             * PTEs of the small zero page), a VMA split at its second
             * subpage, undone at once
             * (MADV_DONTFORK then MADV_DOFORK; the reverse where bit k of
             * mask says that subpage is VM_DONTCOPY already) */
            unsigned long big = PAGE * NR, mask = (unsigned long)a[3];
            unsigned long rs = g->base & ~(big - 1), a0 = g->base + lo * PAGE, a1 = g->base + hi * PAGE;
            int did = 0;
            for (unsigned long e = a0 & ~(big - 1); e < a1 && !rc; e += big) {
                if (e < g->base || e + big > g->base + g->n * PAGE) continue;
                uint64_t pm0[512];
                int lv0[512];
                read_pm(e, NR, pm0);
                levels(pm_self, getpid(), e, NR, pm0, lv0);
                if (lv0[0] != 2 && lv0[0] != 4) continue;
                int dc = (mask >> ((e - rs) / big)) & 1;
                rc = madvise((void *)(e + PAGE), PAGE, dc ? MADV_DOFORK : MADV_DONTFORK);
                if (!rc) rc = madvise((void *)(e + PAGE), PAGE, dc ? MADV_DONTFORK : MADV_DOFORK);
                did++;
            }
            emit("{\"t\":\"split\",\"k\":%d,\"p\":%d,\"pmds\":%d}", cur_step, me, did);
        } else if (!strcmp(op, "split_page")) {
            rc = splitpages(getpid(), g->base + lo * PAGE, g->base + (lo + 1) * PAGE, err, sizeof err);
        } else if (!strcmp(op, "pin")) {
            /* pin <k> rid lo hi pinid rw ringfd */
            int pinid = (int)a[3];
            unsigned long n = hi - lo;
            uint64_t *before = malloc(n * 8);
            arm(rid, lo, hi);
            read_pm(g->base + lo * PAGE, n, before);
            if (a[4]) {
                /* the iovec, and getrusage's buffer in a first call, are
                 * written before f0 is read: in a child just forked, the first
                 * store to a stack page still shared with the parent is a COW
                 * fault of its own, which would be counted as the pin's */
                struct iovec iov = {(void *)(g->base + lo * PAGE), n * PAGE};
                (void)minflt_thread();
                long f0 = minflt_thread();
                /* the ring was made by the orchestrator before any worker
                 * existed, so every worker has inherited its fd (io_uring
                 * fds cannot be passed with SCM_RIGHTS) */
                {
                    rc = syscall(__NR_io_uring_register, (int)a[5], IORING_REGISTER_BUFFERS, &iov, 1);
                    if (rc) snprintf(err, sizeof err, "io_uring register buffers: %s", strerror(errno));
                    long f1 = minflt_thread();
                    if (!rc) gup_record("pin", rid, lo, n, before, f1 - f0);
                }
            } else {
                /* the helper thread's own start-up faults would be counted
                 * too: the faults of a read-only pin are not reported */
                rc = ropin_take(pinid, rid, lo, hi, err, sizeof err);
                if (!rc) gup_record("pin", rid, lo, n, before, -1);
            }
            for (int i = 0; i < nfds; i++) close(fds[i]);
            nfds = 0;
            disarm(rid);
            free(before);
        } else if (!strcmp(op, "vmsplice")) {
            /* vmsplice <k> rid lo hi pinid, write ends of the pipes attached */
            unsigned long n = hi - lo, done = 0;
            uint64_t *before = malloc(n * 8);
            arm(rid, lo, hi);
            read_pm(g->base + lo * PAGE, n, before);
            long f0 = minflt_thread();
            for (int i = 0; i < nfds && done < n && !rc; i++) {
                unsigned long m = n - done < 256 ? n - done : 256;
                unsigned long off = 0;
                while (off < m * PAGE) {
                    struct iovec iov = {(void *)(g->base + (lo + done) * PAGE + off), m * PAGE - off};
                    ssize_t w = vmsplice(fds[i], &iov, 1, 0);
                    if (w <= 0) { rc = -1; snprintf(err, sizeof err, "vmsplice: %s", strerror(errno)); break; }
                    off += w;
                }
                done += m;
            }
            long f1 = minflt_thread();
            if (!rc && done < n) { rc = -1; snprintf(err, sizeof err, "vmsplice: not enough pipes"); }
            if (!rc) gup_record("vmsplice", rid, lo, n, before, f1 - f0);
            for (int i = 0; i < nfds; i++) close(fds[i]);
            nfds = 0;
            disarm(rid);
            free(before);
        } else if (!strcmp(op, "roread") || !strcmp(op, "rodrop")) {
            /* roread <k> pinid: finish the blocked read and report its stamps */
            int pinid = (int)a[0];
            unsigned long n = RO[pinid].n;
            uint64_t *st = calloc(n ? n : 1, 8);
            rc = ropin_release(pinid, st);
            if (!strcmp(op, "roread")) {
                struct sb b = {0};
                sb_put(&b, "{\"t\":\"devview\",\"k\":%d,\"pin\":%d,\"stamps\":[", cur_step, pinid);
                for (unsigned long i = 0; i < n; i++)
                    sb_put(&b, "%s%ld", i ? "," : "",
                           st[i] == (uint64_t)-1 ? -1L : (long)(st[i] >> 32) * 10000 + (long)(st[i] & 0xffffffff));
                sb_put(&b, "]}");
                sb_flush(&b);
                free(b.p);
            }
            free(st);
            if (rc) snprintf(err, sizeof err, "read-only pin: the blocked read did not complete");
        } else if (!strcmp(op, "peek")) {
            /* peek <k> rid lo hi tag: the CPU view of this process */
            struct sb b = {0};
            sb_put(&b, "{\"t\":\"cpuview\",\"k\":%d,\"p\":%d,\"r\":%d,\"lo\":%lu,\"tag\":%ld,\"stamps\":[", cur_step,
                   me, rid, lo, a[3]);
            peek_stamps(&b, rid, lo, hi);
            sb_put(&b, "]}");
            sb_flush(&b);
            free(b.p);
        } else if (!strcmp(op, "fork")) {
            /* fork <k> childidx */
            int child = (int)a[0];
            uint64_t t0 = now_ns();
            pid_t c = fork();
            if (c == 0) {
                privatize_stack();
                me = child;
                wsock = socks_all[child];
                reopen_pagemap();
                for (int i = 0; i < MAXPIN; i++)
                    if (RO[i].used) { close(RO[i].uffd); RO[i].used = 0; }
                send_msg(wsock, "hello", NULL, 0);
                continue;
            }
            uint64_t t1 = now_ns();
            privatize_stack(); /* after timing the fork */
            if (c < 0) { rc = -1; snprintf(err, sizeof err, "fork: %s", strerror(errno)); }
            else {
                char rep[96];
                snprintf(rep, sizeof rep, "ok %d %llu", (int)c, (unsigned long long)(t1 - t0));
                send_msg(wsock, rep, NULL, 0);
                continue;
            }
        } else if (!strcmp(op, "exit")) {
            send_msg(wsock, "ok", NULL, 0);
            _exit(0);
        } else {
            rc = -1;
            snprintf(err, sizeof err, "unknown command %s", op);
        }
        if (rc && !err[0]) snprintf(err, sizeof err, "%s: %s", op, strerror(errno));
        char rep[320];
        snprintf(rep, sizeof rep, rc ? "err %s" : "ok", err);
        send_msg(wsock, rep, NULL, 0);
    }
}

/* ========================================================== orchestrator */
struct proc {
    int alive, spawned, pid, pidfd, pm;
    unsigned long rbase[MAXR], rn[MAXR];
};
struct pin {
    int used, kind, owner, spent;
    unsigned long addr, n;
    struct ring ring;
    int pipes[16], npipes;
};
enum { PIN_RW = 1, PIN_RO = 2, PIN_REF = 3 };
static struct proc P[MAXP];
static struct pin PINS[MAXPIN];
static int orch_socks[MAXP];
static int memfd = -1;
static int cur_k = 0;

static void emit_error(const char *what, const char *msg)
{
    struct sb b = {0};
    sb_put(&b, "{\"t\":\"error\",\"k\":%d,\"op\":", cur_k);
    json_str(&b, what);
    sb_put(&b, ",\"msg\":");
    json_str(&b, msg);
    sb_put(&b, "}");
    sb_flush(&b);
    free(b.p);
}
static int ask(int p, const char *cmd, const int *fds, int nfds, char *rep, size_t cap)
{
    if (p < 0 || p >= nprocs || !P[p].alive) { snprintf(rep, cap, "err process is not running"); return -1; }
    if (send_msg(orch_socks[p], cmd, fds, nfds)) { snprintf(rep, cap, "err send: %s", strerror(errno)); return -1; }
    int k = recv_msg(orch_socks[p], rep, cap, NULL, NULL, 120000);
    if (k <= 0) { snprintf(rep, cap, "err worker %d did not answer", p); return -1; }
    return strncmp(rep, "ok", 2) ? -1 : 0;
}
static void open_proc(int p, int pid)
{
    char path[64];
    P[p].alive = P[p].spawned = 1;
    P[p].pid = pid;
    P[p].pidfd = syscall(434 /* pidfd_open */, pid, 0);
    snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    P[p].pm = open(path, O_RDONLY | O_CLOEXEC);
}
static void wait_gone(int p)
{
    if (P[p].pidfd >= 0) {
        struct pollfd pf = {P[p].pidfd, POLLIN, 0};
        poll(&pf, 1, 30000);
        close(P[p].pidfd);
    } else {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", P[p].pid);
        for (int i = 0; i < 3000; i++) {
            FILE *f = fopen(path, "r");
            if (!f) break;
            char st = 0;
            int ok = fscanf(f, "%*d %*s %c", &st);
            fclose(f);
            if (ok == 1 && (st == 'Z' || st == 'X')) break;
            usleep(1000);
        }
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    if (P[p].pm >= 0) close(P[p].pm);
    P[p].alive = 0;
    P[p].pidfd = P[p].pm = -1;
}
static int spawn_root(int p)
{
    pid_t c = fork();
    if (c < 0) return -1;
    if (c == 0) {
        for (int i = 0; i < nprocs; i++) close(orch_socks[i]);
        if (memfd >= 0) close(memfd);
        me = p;
        wsock = socks_all[p];
        reopen_pagemap();
        send_msg(wsock, "hello", NULL, 0);
        worker_loop();
        _exit(0);
    }
    char rep[64];
    if (recv_msg(orch_socks[p], rep, sizeof rep, NULL, NULL, 30000) <= 0) return -1;
    open_proc(p, c);
    return 0;
}

static void snapshot(void)
{
    struct sb b = {0};
    sb_put(&b, "{\"t\":\"snap\",\"k\":%d,\"procs\":[", cur_k);
    int firstp = 1;
    for (int p = 0; p < nprocs; p++) {
        if (!P[p].alive) continue;
        sb_put(&b, "%s{\"p\":%d,\"pid\":%d,\"regions\":[", firstp ? "" : ",", p, P[p].pid);
        firstp = 0;
        int firstr = 1;
        for (int r = 0; r < MAXR; r++) {
            if (!P[p].rn[r]) continue;
            unsigned long n = P[p].rn[r], base = P[p].rbase[r];
            uint64_t *pm = calloc(n, 8);
            int *lv = calloc(n, sizeof(int));
            if (pread_all(P[p].pm, pm, n * 8, (base / PAGE) * 8)) memset(pm, 0, n * 8);
            levels(P[p].pm, P[p].pid, base, n, pm, lv);
            sb_put(&b, "%s{\"r\":%d,\"base\":%lu,\"n\":%lu,\"runs\":[", firstr ? "" : ",", r, base, n);
            firstr = 0;
            /* runs of subpages: [first, count, pfn, pfn stride (1 or 0),
             * level, pagemap exclusive bit, kpagecount, kpageflags, head's
             * kpageflags, head pfn] */
            long rs = -1;
            uint64_t rpfn = 0, rstride = 1, rkf = 0, rhkf = 0, rkc = 0, rhead = 0;
            int rlv = 0, rex = 0, firstrun = 1;
            unsigned long rcount = 0;
            for (unsigned long i = 0; i <= n; i++) {
                uint64_t pfn = 0, kf = 0, hkf = 0, kc = 0, head = 0;
                int lvl = 0, ex = 0;
                if (i < n && PM_PRESENT(pm[i])) {
                    pfn = PM_PFN(pm[i]);
                    ex = PM_EXCL(pm[i]);
                    lvl = lv[i];
                    kf = kflags(pfn) & KF_MASK;
                    kc = kcount(pfn);
                    if (kf & (1ULL << KPF_TAIL)) {
                        head = pfn & ~(uint64_t)(NR - 1);
                        for (uint64_t h = pfn; h + NR > pfn && h > 0; h--) {
                            uint64_t f = kflags(h);
                            if (f & (1ULL << KPF_HEAD)) { head = h; break; }
                            if (!(f & (1ULL << KPF_TAIL))) break;
                        }
                        hkf = kflags(head) & KF_MASK;
                    } else if (kf & (1ULL << KPF_HEAD)) {
                        head = pfn;
                        hkf = kf;
                    }
                }
                int same = rs >= 0 && i < n && lvl == rlv && ex == rex && kf == rkf && hkf == rhkf && kc == rkc &&
                           head == rhead;
                if (same && rcount == 1 && (pfn == rpfn + 1 || pfn == rpfn)) {
                    rstride = pfn - rpfn;
                    rcount++;
                    continue;
                }
                if (same && rcount > 1 && pfn == rpfn + rstride * rcount) { rcount++; continue; }
                if (rs >= 0) {
                    sb_put(&b, "%s[%ld,%lu,%llu,%llu,%d,%d,%llu,%llu,%llu,%llu]", firstrun ? "" : ",", rs, rcount,
                           (unsigned long long)rpfn, (unsigned long long)rstride, rlv, rex, (unsigned long long)rkc,
                           (unsigned long long)rkf, (unsigned long long)rhkf, (unsigned long long)rhead);
                    firstrun = 0;
                }
                rs = i;
                rcount = 1;
                rpfn = pfn; rstride = 1; rlv = lvl; rex = ex; rkf = kf; rhkf = hkf; rkc = kc; rhead = head;
            }
            sb_put(&b, "]}");
            free(pm);
            free(lv);
        }
        sb_put(&b, "]}");
    }
    sb_put(&b, "]");
    FILE *f = fopen("/proc/vmstat", "r");
    if (f) {
        char name[64];
        unsigned long long v;
        sb_put(&b, ",\"vmstat\":{");
        int first = 1;
        while (fscanf(f, "%63s %llu", name, &v) == 2) {
            if (!strcmp(name, "thp_split_pmd") || !strcmp(name, "thp_fault_alloc") ||
                !strcmp(name, "thp_fault_fallback") || !strcmp(name, "thp_collapse_alloc") ||
                !strcmp(name, "thp_split_page") || !strcmp(name, "thp_deferred_split_page") ||
                !strcmp(name, "pgreuse")) {
                sb_put(&b, "%s\"%s\":%llu", first ? "" : ",", name, v);
                first = 0;
            }
        }
        sb_put(&b, "}");
        fclose(f);
    }
    sb_put(&b, "}");
    sb_flush(&b);
    free(b.p);
}

static long stamp_of(const uint32_t *s)
{
    return s[0] == STAMP_MAGIC ? (long)s[1] * 10000 + s[2] : -1;
}
/* what the device (io_uring fixed buffer) or the pipe reads now */
static int devview(int id, const char *why)
{
    struct pin *q = &PINS[id];
    unsigned long n = q->n;
    long *st = calloc(n, sizeof(long));
    int rc = 0;
    if (q->kind == PIN_RW) {
        long k = ring_rw(&q->ring, IORING_OP_WRITE_FIXED, memfd, q->addr, n * PAGE, 0);
        if (k != (long)(n * PAGE)) rc = -1;
        for (unsigned long i = 0; i < n && !rc; i++) {
            uint32_t s[4];
            if (pread_all(memfd, s, 16, i * PAGE)) { rc = -1; break; }
            st[i] = stamp_of(s);
        }
    } else if (q->kind == PIN_REF) {
        int sp[2];
        if (pipe(sp)) rc = -1;
        else {
            fcntl(sp[1], F_SETPIPE_SZ, 1 << 20);
            unsigned long i = 0;
            char *buf = malloc(PAGE);
            for (int j = 0; j < q->npipes && !rc; j++) {
                ssize_t t = tee(q->pipes[j], sp[1], 1 << 20, SPLICE_F_NONBLOCK);
                if (t < 0) { rc = -1; break; }
                for (ssize_t got = 0; got < t; got += PAGE, i++) {
                    if (pread_all(sp[0], buf, 0, 0) && 0) {}
                    size_t need = PAGE, have = 0;
                    while (have < need) {
                        ssize_t r = read(sp[0], buf + have, need - have);
                        if (r <= 0) { rc = -1; break; }
                        have += r;
                    }
                    if (rc) break;
                    if (i < n) st[i] = stamp_of((uint32_t *)buf);
                }
            }
            free(buf);
            close(sp[0]);
            close(sp[1]);
        }
    } else {
        rc = -1;
    }
    if (!rc) {
        struct sb b = {0};
        sb_put(&b, "{\"t\":\"devview\",\"k\":%d,\"pin\":%d,\"why\":\"%s\",\"stamps\":[", cur_k, id, why);
        for (unsigned long i = 0; i < n; i++) sb_put(&b, "%s%ld", i ? "," : "", st[i]);
        sb_put(&b, "]}");
        sb_flush(&b);
        free(b.p);
    }
    free(st);
    return rc;
}

static void unpin(int id)
{
    struct pin *q = &PINS[id];
    char rep[320], cmd[64];
    if (!q->used) return;
    if (q->kind == PIN_RW) {
        syscall(__NR_io_uring_register, q->ring.fd, IORING_UNREGISTER_BUFFERS, NULL, 0);
    } else if (q->kind == PIN_REF) {
        for (int j = 0; j < q->npipes; j++) close(q->pipes[j]);
    } else if (q->kind == PIN_RO && !q->spent) {
        snprintf(cmd, sizeof cmd, "rodrop %d %d", cur_k, id);
        if (ask(q->owner, cmd, NULL, 0, rep, sizeof rep)) emit_error("unpin", rep + (rep[0] == 'e' ? 4 : 0));
    }
    q->used = 0;
}

static void cleanup(void)
{
    for (int i = 0; i < MAXPIN; i++) unpin(i);
    for (int i = 0; i < MAXPIN; i++) ring_close(&PINS[i].ring);
    char rep[64], cmd[32];
    for (int p = 0; p < nprocs; p++) {
        if (!P[p].alive) continue;
        snprintf(cmd, sizeof cmd, "exit %d", cur_k);
        ask(p, cmd, NULL, 0, rep, sizeof rep);
        wait_gone(p);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

static void run_step(char *line)
{
    char op[32], rep[512], cmd[512];
    long a[8] = {0};
    int line_no = 0;
    int n = sscanf(line, "step %d %d %31s %ld %ld %ld %ld %ld %ld %ld %ld", &cur_k, &line_no, op, &a[0], &a[1], &a[2],
                   &a[3], &a[4], &a[5], &a[6], &a[7]);
    if (n < 3) { emit_error("plan", line); return; }
    emit("{\"t\":\"step\",\"k\":%d,\"line\":%d,\"op\":\"%s\"}", cur_k, line_no, op);
    int p = (int)a[0];
    int rc = 0;
    rep[0] = 0;
    if (!strcmp(op, "mmap")) {
        /* mmap p rid nsub huge */
        if (!P[p].spawned && spawn_root(p)) { rc = -1; snprintf(rep, sizeof rep, "err cannot start a process"); }
        if (!rc) {
            snprintf(cmd, sizeof cmd, "mmap %d %ld %ld %ld", cur_k, a[1], a[2], a[3]);
            rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
            if (!rc) { P[p].rbase[a[1]] = REGION_BASE + a[1] * REGION_STRIDE; P[p].rn[a[1]] = a[2]; }
        }
    } else if (!strcmp(op, "read") || !strcmp(op, "write") || !strcmp(op, "munmap") || !strcmp(op, "dontneed") ||
               !strcmp(op, "dontfork") || !strcmp(op, "dofork") || !strcmp(op, "split_page") ||
               !strcmp(op, "mprotect") || !strcmp(op, "split_pmd")) {
        snprintf(cmd, sizeof cmd, "%s %d %ld %ld %ld %ld", op, cur_k, a[1], a[2], a[3], a[4]);
        rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
        if (!strcmp(op, "write")) {
            /* what every device and pipe of another process reads now */
            for (int i = 0; i < MAXPIN; i++)
                if (PINS[i].used && PINS[i].owner != p && PINS[i].kind != PIN_RO) devview(i, "leakcheck");
        }
    } else if (!strcmp(op, "mremap")) {
        /* mremap p rid lo hi newrid aligned */
        snprintf(cmd, sizeof cmd, "mremap %d %ld %ld %ld %ld %ld", cur_k, a[1], a[2], a[3], a[4], a[5]);
        rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
        if (!rc) {
            unsigned long src = P[p].rbase[a[1]] + a[2] * PAGE;
            P[p].rbase[a[4]] = REGION_BASE + a[4] * REGION_STRIDE + ((src / PAGE) % NR) * PAGE + (a[5] ? 0 : PAGE);
            P[p].rn[a[4]] = a[3] - a[2];
        }
    } else if (!strcmp(op, "pin")) {
        /* pin p rid lo hi pinid rw */
        int id = (int)a[4];
        struct pin *q = &PINS[id];
        snprintf(cmd, sizeof cmd, "pin %d %ld %ld %ld %ld %ld", cur_k, a[1], a[2], a[3], a[4], a[5]);
        if (a[5]) {
            if (q->ring.fd < 0) { rc = -1; snprintf(rep, sizeof rep, "err no io_uring ring for this pin"); }
            else {
                snprintf(cmd, sizeof cmd, "pin %d %ld %ld %ld %ld 1 %d", cur_k, a[1], a[2], a[3], a[4], q->ring.fd);
                rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
            }
        } else {
            rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
        }
        if (!rc) {
            q->used = 1;
            q->kind = a[5] ? PIN_RW : PIN_RO;
            q->owner = p;
            q->addr = P[p].rbase[a[1]] + a[2] * PAGE;
            q->n = a[3] - a[2];
        }
    } else if (!strcmp(op, "vmsplice")) {
        /* vmsplice p rid lo hi pinid */
        int id = (int)a[4];
        struct pin *q = &PINS[id];
        unsigned long npg = a[3] - a[2];
        int wfd[16];
        q->npipes = (npg + 255) / 256;
        if (q->npipes > 16) { rc = -1; snprintf(rep, sizeof rep, "err vmsplice range too large"); }
        for (int j = 0; j < q->npipes && !rc; j++) {
            int pp[2];
            if (pipe(pp)) { rc = -1; snprintf(rep, sizeof rep, "err pipe: %s", strerror(errno)); break; }
            if (fcntl(pp[1], F_SETPIPE_SZ, 1 << 20) < 0) {
                rc = -1;
                snprintf(rep, sizeof rep, "err F_SETPIPE_SZ: %s", strerror(errno));
            }
            q->pipes[j] = pp[0];
            wfd[j] = pp[1];
        }
        if (!rc) {
            snprintf(cmd, sizeof cmd, "vmsplice %d %ld %ld %ld %ld", cur_k, a[1], a[2], a[3], a[4]);
            rc = ask(p, cmd, wfd, q->npipes, rep, sizeof rep);
        }
        for (int j = 0; j < q->npipes; j++) close(wfd[j]);
        if (!rc) {
            q->used = 1;
            q->kind = PIN_REF;
            q->owner = p;
            q->addr = P[p].rbase[a[1]] + a[2] * PAGE;
            q->n = npg;
        } else {
            for (int j = 0; j < q->npipes; j++) close(q->pipes[j]);
        }
    } else if (!strcmp(op, "unpin")) {
        /* unpin pinid (a[0]) */
        unpin((int)a[0]);
    } else if (!strcmp(op, "dma_read")) {
        /* dma_read pinid owner rid lo hi: the device's view, then the
         * owner's CPU view of where the pinned pages are now */
        int id = (int)a[0];
        struct pin *q = &PINS[id];
        if (!q->used || q->spent) { rc = -1; snprintf(rep, sizeof rep, "err the pin is not held"); }
        else if (q->kind == PIN_RO) {
            snprintf(cmd, sizeof cmd, "roread %d %d", cur_k, id);
            rc = ask(q->owner, cmd, NULL, 0, rep, sizeof rep);
            q->spent = 1;
        } else {
            rc = devview(id, "dma_read");
            if (rc) snprintf(rep, sizeof rep, "err device read failed");
        }
        if (!rc && a[1] >= 0 && P[a[1]].alive) {
            snprintf(cmd, sizeof cmd, "peek %d %ld %ld %ld %d", cur_k, a[2], a[3], a[4], id);
            ask((int)a[1], cmd, NULL, 0, rep, sizeof rep);
        }
    } else if (!strcmp(op, "dma_write")) {
        /* dma_write pinid */
        int id = (int)a[0];
        struct pin *q = &PINS[id];
        if (!q->used || q->kind != PIN_RW) {
            rc = -1;
            snprintf(rep, sizeof rep, "err %s", q->used ? "the pin is read-only" : "the pin is not held");
        } else {
            char *buf = calloc(q->n, PAGE);
            for (unsigned long i = 0; i < q->n; i++) {
                uint32_t *s = (uint32_t *)(buf + i * PAGE);
                s[0] = STAMP_MAGIC;
                s[1] = cur_k;
                s[2] = DEVICE_WRITER;
                s[3] = i;
            }
            if (pwrite(memfd, buf, q->n * PAGE, 0) != (ssize_t)(q->n * PAGE)) rc = -1;
            free(buf);
            long k = rc ? -1 : ring_rw(&q->ring, IORING_OP_READ_FIXED, memfd, q->addr, q->n * PAGE, 0);
            if (k != (long)(q->n * PAGE)) { rc = -1; snprintf(rep, sizeof rep, "err device write failed (%ld)", k); }
        }
    } else if (!strcmp(op, "fork")) {
        /* fork p c */
        int c = (int)a[1];
        snprintf(cmd, sizeof cmd, "fork %d %d", cur_k, c);
        rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
        if (!rc) {
            int pid = 0;
            unsigned long long ns = 0;
            sscanf(rep, "ok %d %llu", &pid, &ns);
            char hello[64];
            if (recv_msg(orch_socks[c], hello, sizeof hello, NULL, NULL, 30000) <= 0) {
                rc = -1;
                snprintf(rep, sizeof rep, "err the child did not start");
            } else {
                open_proc(c, pid);
                memcpy(P[c].rbase, P[p].rbase, sizeof P[c].rbase);
                memcpy(P[c].rn, P[p].rn, sizeof P[c].rn);
                emit("{\"t\":\"fork\",\"k\":%d,\"p\":%d,\"c\":%d,\"pid\":%d,\"ns\":%llu}", cur_k, p, c, pid, ns);
            }
        }
    } else if (!strcmp(op, "exit")) {
        snprintf(cmd, sizeof cmd, "exit %d", cur_k);
        rc = ask(p, cmd, NULL, 0, rep, sizeof rep);
        wait_gone(p);
        for (int i = 0; i < MAXPIN; i++)
            if (PINS[i].used && PINS[i].owner == p && PINS[i].kind == PIN_RO) PINS[i].spent = 1;
    } else if (!strcmp(op, "deferred_split")) {
        /* only planned where the machine is ours (a guest): drop_caches runs
         * every shrinker, the deferred-split one among them */
        int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
        if (fd < 0 || write(fd, "2", 1) != 1) { rc = -1; snprintf(rep, sizeof rep, "err drop_caches: %s", strerror(errno)); }
        if (fd >= 0) close(fd);
    } else if (!strcmp(op, "nop")) {
    } else {
        rc = -1;
        snprintf(rep, sizeof rep, "err unknown plan op %s", op);
    }
    if (rc) emit_error(op, rep[0] == 'e' && rep[1] == 'r' ? rep + 4 : rep);
    snapshot();
}

static int open_kpage(void)
{
    kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    kpc_fd = open("/proc/kpagecount", O_RDONLY | O_CLOEXEC);
    return kpf_fd >= 0 && kpc_fd >= 0;
}

/* Every process of a scenario runs on one CPU.  A page just added to the
 * LRU sits in a per-CPU folio batch that holds a reference; do_wp_page's
 * reuse test (wp_can_reuse_anon_folio) drains only the local CPU's batch, so
 * a page still in another CPU's batch has one reference too many and a sole
 * owner's write copies it -- at random, seen in the 6.12 guest.  On one CPU
 * the drain always reaches it, as the model assumes. */
static void one_cpu(void)
{
    int cpu = sched_getcpu();
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu < 0 ? 0 : cpu, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

static int cmd_run(void)
{
    char line[1024];
    one_cpu();
    open_kpage();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    memfd = syscall(__NR_memfd_create, "thpviz-device", MFD_CLOEXEC);
    have_scan = 1;
    for (int i = 0; i < MAXP; i++) orch_socks[i] = socks_all[i] = -1;
    for (int i = 0; i < MAXPIN; i++) PINS[i].ring.fd = -1;
    emit("{\"t\":\"start\",\"pid\":%d}", getpid());
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        if (!strncmp(line, "thp ", 4)) {
            NR = strtoul(line + 4, NULL, 10);
            if (NR != 512 || sysconf(_SC_PAGESIZE) != (long)PAGE) {
                emit_error("plan", "only 4 KiB pages with 512-subpage THPs are supported");
                return 2;
            }
        } else if (!strncmp(line, "procs ", 6)) {
            nprocs = atoi(line + 6);
            if (nprocs < 1 || nprocs > MAXP) { emit_error("plan", "too many processes"); return 2; }
            for (int i = 0; i < nprocs; i++) {
                int sv[2];
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) return 2;
                orch_socks[i] = sv[0];
                socks_all[i] = sv[1];
                P[i].pidfd = P[i].pm = -1;
            }
        } else if (!strncmp(line, "rings ", 6)) {
            /* one io_uring ring per read-write pin, made before any worker
             * so that every worker inherits it */
            int nr = atoi(line + 6);
            for (int i = 0; i < nr && i < MAXPIN; i++) {
                int e = ring_setup(&PINS[i].ring);
                if (e) { PINS[i].ring.fd = -1; emit_error("io_uring_setup", strerror(-e)); }
            }
        } else if (!strncmp(line, "step ", 5)) {
            run_step(line);
        } else if (!strcmp(line, "end")) {
            break;
        }
    }
    cleanup();
    emit("{\"t\":\"end\"}");
    return 0;
}

/* ================================================================= probe */
static void *aligned_region(unsigned long size, int huge)
{
    unsigned long big = PAGE * 512;
    char *p = mmap(NULL, size + big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((unsigned long)p + big - 1) & ~(big - 1));
    if (a > p) munmap(p, a - p);
    if (a + size < p + size + big) munmap(a + size, p + size + big - (a + size));
    madvise(a, size, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    return a;
}
static int cmd_probe(void)
{
    struct utsname u;
    uname(&u);
    struct sb b = {0};
    sb_put(&b, "{\"t\":\"probe\",\"release\":");
    json_str(&b, u.release);
    sb_put(&b, ",\"machine\":");
    json_str(&b, u.machine);
    sb_put(&b, ",\"pagesize\":%ld", sysconf(_SC_PAGESIZE));
    int kp = open_kpage();
    sb_put(&b, ",\"kpageflags\":%s", kp ? "true" : "false");
    reopen_pagemap();
    /* a small page: are PFNs visible? */
    char *s = aligned_region(PAGE * 512, 0);
    s[0] = 1;
    uint64_t e;
    read_pm((unsigned long)s, 1, &e);
    sb_put(&b, ",\"pfn_visible\":%s", PM_PRESENT(e) && PM_PFN(e) ? "true" : "false");
    /* PAGEMAP_SCAN */
    struct page_region_ vec[4];
    struct pm_scan_arg_ a = {0};
    a.size = sizeof a;
    a.start = (unsigned long)s;
    a.end = (unsigned long)s + PAGE;
    a.vec = (uint64_t)(uintptr_t)vec;
    a.vec_len = 4;
    a.return_mask = PAGE_IS_PRESENT_;
    have_scan = ioctl(pm_self, PAGEMAP_SCAN_, &a) >= 0;
    sb_put(&b, ",\"pagemap_scan\":%s", have_scan ? "true" : "false");
    munmap(s, PAGE * 512);
    /* a THP */
    char *t = aligned_region(PAGE * 512, 1);
    uint64_t t0 = now_ns();
    t[0] = 1;
    uint64_t t1 = now_ns();
    uint64_t pm[512];
    int lv[512];
    read_pm((unsigned long)t, 512, pm);
    levels(pm_self, getpid(), (unsigned long)t, 512, pm, lv);
    const char *thp = lv[0] == 2 ? "pmd" : PM_PRESENT(pm[1]) ? "pte" : "none";
    sb_put(&b, ",\"thp\":\"%s\",\"thp_fault_ns\":%llu", thp, (unsigned long long)(t1 - t0));
    const char *excl = "unknown", *mapc = "unknown";
    if (lv[0] == 2 && kp && PM_PFN(pm[0])) {
        uint64_t kh = kflags(PM_PFN(pm[0])), kt = kflags(PM_PFN(pm[5]));
        if (!(kh & (1ULL << KPF_EXCL))) excl = "none";
        else excl = (kt & (1ULL << KPF_EXCL)) ? "folio" : "page";
        madvise(t, PAGE * 512, MADV_NOHUGEPAGE);
        madvise(t + PAGE * 256, PAGE * 256, MADV_DONTNEED);
        uint64_t c = kcount(PM_PFN(pm[300]));
        mapc = c == 0 ? "precise" : "average";
    }
    sb_put(&b, ",\"anon_exclusive_flags\":\"%s\",\"kpagecount\":\"%s\"", excl, mapc);
    munmap(t, PAGE * 512);
    /* io_uring: a ring and one registered page */
    struct ring r;
    int er = ring_setup(&r);
    const char *uring = "ok";
    char ubuf[96];
    if (er) { snprintf(ubuf, sizeof ubuf, "io_uring_setup: %s", strerror(-er)); uring = ubuf; }
    else {
        char *m = aligned_region(PAGE * 512, 0);
        struct iovec iov = {m, PAGE};
        if (syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
            snprintf(ubuf, sizeof ubuf, "register buffers: %s", strerror(errno));
            uring = ubuf;
        }
        ring_close(&r);
        munmap(m, PAGE * 512);
    }
    sb_put(&b, ",\"io_uring\":");
    json_str(&b, uring);
    /* userfaultfd for kernel-mode faults and a read-only pin through it */
    char ebuf[256] = "ok";
    char *m = mmap((void *)(REGION_BASE), PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != MAP_FAILED) {
        R[0] = (struct region){1, (unsigned long)m, 1, 0};
        m[0] = 7;
        ((uint32_t *)m)[0] = STAMP_MAGIC;
        ((uint32_t *)m)[1] = 3;
        ((uint32_t *)m)[2] = 4;
        if (ropin_take(0, 0, 0, 1, ebuf, sizeof ebuf) == 0) {
            uint64_t st;
            if (ropin_release(0, &st) || st != ((3ULL << 32) | 4)) snprintf(ebuf, sizeof ebuf, "the pinned read returned wrong data");
            else snprintf(ebuf, sizeof ebuf, "ok");
        } else if (RO[0].used) {
            ropin_release(0, NULL);
        }
        munmap(m, PAGE);
    } else snprintf(ebuf, sizeof ebuf, "mmap: %s", strerror(errno));
    sb_put(&b, ",\"pin_ro\":");
    json_str(&b, ebuf);
    int fd = open("/sys/kernel/debug/split_huge_pages", O_WRONLY);
    sb_put(&b, ",\"split_huge_pages\":%s", fd >= 0 ? "true" : "false");
    if (fd >= 0) close(fd);
    sb_put(&b, "}");
    sb_flush(&b);
    return 0;
}

/* ================================================================= costs */
static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}
static void out_samples(struct sb *b, const char *name, uint64_t *v, int n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    sb_put(b, ",\"%s\":{\"n\":%d,\"median_ns\":%llu,\"p10_ns\":%llu,\"p90_ns\":%llu}", name, n,
           (unsigned long long)v[n / 2], (unsigned long long)v[n / 10], (unsigned long long)v[(n * 9) / 10]);
}
static pid_t child_waiting(int *wake)
{
    int pp[2];
    if (pipe(pp)) return -1;
    pid_t c = fork();
    if (c == 0) {
        char x;
        close(pp[1]);
        if (read(pp[0], &x, 1) < 0) {}
        _exit(0);
    }
    close(pp[0]);
    *wake = pp[1];
    return c;
}
static void child_release(pid_t c, int wake)
{
    if (write(wake, "x", 1) < 0) {}
    close(wake);
    waitpid(c, NULL, 0);
}
static void one_fork_exit(void)
{
    pid_t c = fork();
    if (c == 0) _exit(0);
    waitpid(c, NULL, 0);
}
/* one store per page, timed; stride in bytes */
static void time_stores(char *base, int n, unsigned long stride, uint64_t *out)
{
    for (int i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        *(volatile char *)(base + i * stride) = 2;
        out[i] = now_ns() - t0;
    }
}
static int cmd_costs(int repeats, int nhuge)
{
    const int nsmall = 512;
    unsigned long big = PAGE * 512;
    struct sb b = {0};
    uint64_t *v = malloc(sizeof(uint64_t) * (nsmall > nhuge ? nsmall : nhuge) * repeats);
    uint64_t *w = malloc(sizeof(uint64_t) * repeats);
    struct utsname u;
    uname(&u);
    sb_put(&b, "{\"t\":\"costs\",\"release\":");
    json_str(&b, u.release);
    sb_put(&b, ",\"repeats\":%d,\"small_pages\":%d,\"thps\":%d", repeats, nsmall, nhuge);
    /* warm up: fault in and free 256 MiB of THPs */
    {
        char *x = aligned_region(big * 128, 1);
        for (int i = 0; i < 128; i++) x[i * big] = 1;
        munmap(x, big * 128);
    }
    int k = 0;
    /* store without a fault */
    for (int r = 0; r < repeats; r++) {
        char *x = aligned_region(PAGE * nsmall, 0);
        for (int i = 0; i < nsmall; i++) x[i * PAGE] = 1;
        time_stores(x, nsmall, PAGE, v + k);
        k += nsmall;
        munmap(x, PAGE * nsmall);
    }
    out_samples(&b, "store_no_fault", v, k);
    k = 0;
    for (int r = 0; r < repeats; r++) {
        char *x = aligned_region(PAGE * nsmall, 0);
        time_stores(x, nsmall, PAGE, v + k);
        k += nsmall;
        munmap(x, PAGE * nsmall);
    }
    out_samples(&b, "small_first_touch", v, k);
    /* 4 KiB write after fork: child alive (copy) / exited (reuse) */
    for (int alive = 1; alive >= 0; alive--) {
        k = 0;
        for (int r = 0; r < repeats; r++) {
            char *x = aligned_region(PAGE * nsmall, 0);
            for (int i = 0; i < nsmall; i++) x[i * PAGE] = 1;
            int wake = -1;
            pid_t c = -1;
            if (alive) c = child_waiting(&wake);
            else one_fork_exit();
            time_stores(x, nsmall, PAGE, v + k);
            k += nsmall;
            if (alive) child_release(c, wake);
            munmap(x, PAGE * nsmall);
        }
        out_samples(&b, alive ? "small_cow" : "small_reuse", v, k);
    }
    /* THP first touch */
    k = 0;
    for (int r = 0; r < repeats; r++) {
        char *x = aligned_region(big * nhuge, 1);
        time_stores(x, nhuge, big, v + k);
        k += nhuge;
        munmap(x, big * nhuge);
    }
    out_samples(&b, "thp_first_touch", v, k);
    /* first write to a PMD-mapped THP after fork: child alive / exited */
    for (int alive = 1; alive >= 0; alive--) {
        k = 0;
        for (int r = 0; r < repeats; r++) {
            char *x = aligned_region(big * nhuge, 1);
            for (int i = 0; i < nhuge; i++) x[i * big] = 1;
            madvise(x, big * nhuge, MADV_NOHUGEPAGE);
            int wake = -1;
            pid_t c = -1;
            if (alive) c = child_waiting(&wake);
            else one_fork_exit();
            time_stores(x, nhuge, big, v + k);
            k += nhuge;
            if (alive) child_release(c, wake);
            munmap(x, big * nhuge);
        }
        out_samples(&b, alive ? "thp_cow" : "thp_reuse", v, k);
    }
    /* fork with nhuge THPs, unpinned and pinned by io_uring */
    for (int pinned = 0; pinned <= 1; pinned++) {
        k = 0;
        int ok = 1;
        for (int r = 0; r < repeats && ok; r++) {
            char *x = aligned_region(big * nhuge, 1);
            for (int i = 0; i < nhuge; i++) x[i * big] = 1;
            madvise(x, big * nhuge, MADV_NOHUGEPAGE);
            struct ring ring;
            ring.fd = -1;
            if (pinned) {
                struct iovec iov = {x, big * nhuge};
                if (ring_setup(&ring) || syscall(__NR_io_uring_register, ring.fd, IORING_REGISTER_BUFFERS, &iov, 1)) {
                    ok = 0;
                    if (ring.fd >= 0) ring_close(&ring);
                    munmap(x, big * nhuge);
                    break;
                }
            }
            uint64_t t0 = now_ns();
            pid_t c = fork();
            if (c == 0) _exit(0);
            w[k++] = now_ns() - t0;
            waitpid(c, NULL, 0);
            if (pinned) ring_close(&ring);
            munmap(x, big * nhuge);
        }
        if (ok && k) out_samples(&b, pinned ? "fork_pinned" : "fork_unpinned", w, k);
    }
    sb_put(&b, "}");
    sb_flush(&b);
    free(v);
    free(w);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "run")) return cmd_run();
    if (argc >= 2 && !strcmp(argv[1], "probe")) return cmd_probe();
    if (argc >= 2 && !strcmp(argv[1], "costs"))
        return cmd_costs(argc > 2 ? atoi(argv[2]) : 5, argc > 3 ? atoi(argv[3]) : 32);
    fprintf(stderr, "usage: %s run|probe|costs [repeats [thps]]\n", argv[0]);
    return 2;
}
