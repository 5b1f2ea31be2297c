#!/usr/bin/env bash
# Set up (see setup.sh) and run every test: the engine and its litmus
# scenarios, the property-based tests, diagrams, widgets, cost model, the
# strict book build, the notebooks, and the browser tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
.venv/bin/thpviz check data/scenarios
exec .venv/bin/python -m pytest -q "$@"
