/* thpviz benchmark (see bench_cost.py): a user-space analogue of the two
 * operations Andrea compared in the 2016 thread -- reading one counter in
 * each of N 64-byte records (page_trans_huge_mapcount over N struct pages)
 * and copying N 4 KiB pages (copy_user_huge_page).  Not kernel code and not
 * a kernel measurement.
 *
 * Usage: memscan REPS N...   prints "op state N median_ns" lines.
 * cold: caches evicted by streaming through a 256 MiB buffer before every
 * repetition; warm: the same operation repeated back to back.
 * Copies larger than 256 MiB are skipped. */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fake_page { uint64_t flags; int32_t refcount; int32_t mapcount; uint64_t pad[6]; };

static double now_ns(void) {
	struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}
static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y);
}
static volatile long sink;
static char *flushbuf; static size_t flushlen;
static void flush(void) {
	long s = 0;
	for (size_t i = 0; i < flushlen; i += 64) { flushbuf[i]++; s += flushbuf[i]; }
	sink += s;
}

int main(int argc, char **argv) {
	int reps = argc > 1 ? atoi(argv[1]) : 31;
	if (argc < 3) { fprintf(stderr, "usage: memscan REPS N...\n"); return 2; }
	flushlen = (size_t)256 << 20; flushbuf = malloc(flushlen); memset(flushbuf, 1, flushlen);
	double *t = malloc(sizeof(double) * reps);
	for (int si = 2; si < argc; si++) {
		size_t n = strtoul(argv[si], NULL, 10);
		int do_copy = n * 4096 <= ((size_t)256 << 20);
		struct fake_page *pages = aligned_alloc(64, n * sizeof(struct fake_page));
		for (size_t i = 0; i < n; i++) { memset(&pages[i], 0, sizeof pages[i]); pages[i].mapcount = (int)(i & 1); }
		char *src = NULL, *dst = NULL;
		if (do_copy) {
			src = aligned_alloc(4096, n * 4096); dst = aligned_alloc(4096, n * 4096);
			memset(src, 3, n * 4096); memset(dst, 0, n * 4096);
		}
		for (int cold = 1; cold >= 0; cold--) {
			for (int r = 0; r < reps; r++) {
				if (cold) flush();
				double a = now_ns();
				int mx = 0; long tot = 0;
				for (size_t i = 0; i < n; i++) {
					int m = __atomic_load_n(&pages[i].mapcount, __ATOMIC_RELAXED) + 1;
					mx = m > mx ? m : mx; tot += m;
				}
				t[r] = now_ns() - a; sink += mx + tot;
			}
			qsort(t, reps, sizeof(double), cmp);
			printf("scan %s %zu %.0f\n", cold ? "cold" : "warm", n, t[reps / 2]);
			if (!do_copy)
				continue;
			for (int r = 0; r < reps; r++) {
				if (cold) flush();
				double a = now_ns();
				memcpy(dst, src, n * 4096);
				t[r] = now_ns() - a; sink += dst[n * 4096 - 1];
			}
			qsort(t, reps, sizeof(double), cmp);
			printf("copy %s %zu %.0f\n", cold ? "cold" : "warm", n, t[reps / 2]);
		}
		free(pages); free(src); free(dst);
	}
	return 0;
}
