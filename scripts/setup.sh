#!/usr/bin/env bash
# Set up everything thpviz needs on a Debian/Ubuntu machine, idempotently:
#   - Debian packages: graphviz (the `dot` program) and, with --browser,
#     chromium for the browser tests;
#   - a virtual environment in .venv with requirements.txt and thpviz itself.
# Without root (or sudo) the apt step is skipped with instructions.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
if [ "$want_browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; fi
  fi
  if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
    echo "setup: installing ${need[*]} with apt-get"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]} and no root/sudo to install them." >&2
    echo "       Ask an administrator to run: apt-get install ${need[*]}" >&2
    echo "       (on conda: conda install graphviz; on macOS: brew install graphviz chromium)" >&2
    exit 1
  fi
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q -e .
# the live lab's tools (gcc, QEMU, busybox); without root it only reports
bash scripts/setup_live.sh || echo "setup: the live lab's tools are missing; thpviz live will skip" >&2
echo "setup: ready (.venv, dot: $(command -v dot))"
