"""Every workshop notebook in notebooks/ runs from top to bottom.

The notebooks are MyST markdown (jupytext); each is converted in memory and
executed with nbclient in the notebooks/ folder, with no display (widgets are
built but never rendered).  A cell that raises fails the test with the
cell's source and the error.
"""

from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))

pytestmark = pytest.mark.notebook


def test_there_are_workshop_notebooks():
    names = {p.stem for p in NOTEBOOKS}
    assert {"01-false-cow", "02-fixes", "03-sandbox", "solutions"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DISPLAY", raising=False)
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except CellExecutionError as err:  # pragma: no cover - the failure path
        pytest.fail(f"{path.name}: {err}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every notebook shows something the engine computed
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
