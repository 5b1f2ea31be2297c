#!/usr/bin/env bash
# Build the thpviz book strictly (warnings are errors) on a Debian/Ubuntu
# machine, from nothing:
#   1. set up .venv with requirements.txt and thpviz, and install Graphviz's
#      `dot` with apt-get when it is missing and we are root or have sudo
#      (scripts/setup.sh does this; --no-setup skips it);
#   2. drop the notebook execution cache when the engine, the scenarios or the
#      book's glue changed since the last successful build (jupyter-cache only
#      looks at the code cells, so it would otherwise keep stale verdicts);
#   3. jupyter-book build book -W -n --keep-going, and print where the HTML is.
#
# Usage: scripts/build_book.sh [--no-setup] [--all] [--clean]
#   --no-setup  use the existing .venv and dot as they are
#   --all       re-read every page (jupyter-book --all); cached outputs are kept
#   --clean     remove book/_build first (everything is executed again)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

setup=1 all=() clean=0
for arg in "$@"; do
  case "$arg" in
    --no-setup) setup=0 ;;
    --all) all=(--all) ;;
    --clean) clean=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build_book: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { echo "build_book: $*" >&2; }

if [ "$setup" = 1 ]; then
  if ! command -v "${PYTHON:-python3}" >/dev/null 2>&1 && [ ! -x .venv/bin/python ]; then
    say "no python3 found. Install Python 3.10 or newer, e.g.: apt-get install python3 python3-venv"
    exit 1
  fi
  bash scripts/setup.sh || {
    say "setup failed: see the message above."
    if [ ! -x .venv/bin/python ]; then
      say "if 'python3 -m venv' failed, install python3-venv (as root or with sudo): apt-get install python3-venv"
    fi
    exit 1
  }
fi

jb=.venv/bin/jupyter-book
if [ ! -x "$jb" ]; then
  say "$jb is missing: run without --no-setup, or: .venv/bin/pip install -r requirements.txt -e ."
  exit 1
fi
if ! command -v dot >/dev/null 2>&1; then
  say "Graphviz's 'dot' is not on PATH and could not be installed here (needs root or sudo)."
  say "  Debian/Ubuntu: apt-get install graphviz    conda: conda install graphviz    macOS: brew install graphviz"
  say "Every diagram of the book is drawn with it, so the build stops here."
  exit 1
fi

build=book/_build
if [ "$clean" = 1 ]; then
  rm -rf "$build"
fi

# What the executed chapters depend on besides their own code cells: the
# engine, the scenarios and thread data, the book's glue modules, and the
# workshop notebooks (the handout quotes their exercises).
stamp=$( { find thpviz data book/thpbook.py book/thpthread.py notebooks -type f \
             \( -name '*.py' -o -name '*.thp' -o -name '*.yaml' -o -name '*.md' \) \
             -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
stamp_file=$build/.thpviz-engine-stamp
if [ -d "$build/.jupyter_cache" ] && [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  say "engine, scenarios or book glue changed: executing every chapter again"
  rm -rf "$build/.jupyter_cache" "$build/jupyter_execute"
  all=(--all)
fi

say "jupyter-book build book -W -n --keep-going ${all[*]:-}"
if ! "$jb" build book -W -n --keep-going "${all[@]}"; then
  say "the strict build failed; see the warnings above"
  if ls "$build"/html/reports/*.log >/dev/null 2>&1; then
    say "execution reports: $root/$build/html/reports/"
  fi
  exit 1
fi
mkdir -p "$build"
echo "$stamp" > "$stamp_file"
say "done. Open $root/$build/html/index.html"
