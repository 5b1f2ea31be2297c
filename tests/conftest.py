import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "data" / "scenarios"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests that need a browser, dot or a book build skip locally with a reason,
# but must not skip in CI.
IN_CI = bool(os.environ.get("CI"))
