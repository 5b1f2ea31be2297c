#!/usr/bin/env bash
# Host-side tools for the live lab (`thpviz live`), idempotently:
#   - gcc and libc6-dev: the lab's executor (thpviz/live/executor.c) is built on
#     demand as one static binary (io_uring through raw syscalls: no liburing);
#   - qemu-system-x86 and busybox-static: `thpviz live --kernel 6.1|6.12` boots
#     Debian's cloud kernel under QEMU (TCG) with a minimal initramfs.
# The guest kernels themselves are fetched on demand with `apt-get download`
# into a cache directory (never installed into /boot).
# Without root (or sudo) it prints what is missing and exits 0: the lab then
# reports the affected experiments as skipped.
set -euo pipefail

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || need+=(libc6-dev)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
if [ "${#need[@]}" -eq 0 ]; then
  echo "setup_live: ready (gcc, qemu-system-x86_64, busybox)"
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; fi
fi
if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
  echo "setup_live: installing ${need[*]} with apt-get"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "setup_live: ready"
else
  echo "setup_live: missing ${need[*]} and no root/sudo; the live lab will skip what needs them." >&2
  echo "            Ask an administrator to run: apt-get install --no-install-recommends ${need[*]}" >&2
fi
