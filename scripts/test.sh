#!/usr/bin/env bash
# Set up (see setup.sh) and run every test: the engine and its litmus
# scenarios, the property-based and fuzz tests, diagrams, widgets, cost model,
# the strict book build, the notebooks, and the browser tests in headless
# Chromium.
#
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --quick    the edit loop: engine, parser, CLI, litmus
#                                   files and their golden history, with small
#                                   hypothesis and fuzz budgets; no diagrams,
#                                   widgets, cost model, live lab, book,
#                                   browser, notebook or slow tests; no setup
#                                   step (run the full command once first)
# Further arguments go to pytest (e.g. -k parser, -x).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--quick" ]; then
  shift
  if [ ! -x .venv/bin/python ]; then
    echo "test.sh --quick: no .venv yet; run 'bash scripts/test.sh' (or scripts/setup.sh) once" >&2
    exit 2
  fi
  export THPVIZ_HYPOTHESIS_EXAMPLES="${THPVIZ_HYPOTHESIS_EXAMPLES:-4}"
  export THPVIZ_FUZZ_EXAMPLES="${THPVIZ_FUZZ_EXAMPLES:-40}"
  export THPVIZ_FUZZ_MUTATIONS="${THPVIZ_FUZZ_MUTATIONS:-3}"
  # the front ends' tests (diagrams, widgets, cost plots, the live lab, the
  # book's pages) run in the full command
  exec .venv/bin/python -m pytest -q -m "not slow and not book and not browser and not notebook and not live" \
    --ignore-glob='tests/test_book*.py' --ignore-glob='tests/test_render*.py' \
    --ignore-glob='tests/test_widgets*.py' --ignore-glob='tests/test_cost*.py' \
    --ignore-glob='tests/test_live*.py' --ignore-glob='tests/test_storyboard*.py' \
    -p no:cacheprovider "$@"
fi

bash scripts/setup.sh --browser
.venv/bin/thpviz check data/scenarios
exec .venv/bin/python -m pytest -q "$@"
