"""Every workshop notebook in notebooks/ runs from top to bottom, and says
what it asks in terms a reader can find.

The notebooks are MyST markdown (jupytext); each is converted in memory and
executed with nbclient in the notebooks/ folder, with no display (widgets are
built but never rendered).  A cell that raises fails the test with the
cell's source and the error.  Exercises and widgets point at statements
(``start="C: exit"``), never at step numbers, and every statement they name
exists in the scenario; the sandbox a reader clicks starts empty, however
the notebook is run.
"""

import ast
import re
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from thpviz.scenario import parse_file

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))
#: the workshop's own notebooks (others, such as the live lab's, bring their
#: own tests of what they say)
WORKSHOP = [p for p in NOTEBOOKS if p.stem in ("01-false-cow", "02-fixes", "03-sandbox", "solutions")]


def code_cells(path):
    return [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]


def _scenario_of(call: ast.Call, env: dict) -> str | None:
    if not call.args:
        return None
    text = ast.unparse(call.args[0])
    m = re.search(r'"(data/scenarios/[^"]+\.thp)"', text)
    if m:
        return m.group(1)
    name = text if text.isidentifier() else None
    return env.get(name)


@pytest.mark.parametrize("path", WORKSHOP, ids=[p.stem for p in WORKSHOP])
def test_widgets_and_exercises_name_statements_that_exist(path):
    """``start=`` and ``after=`` are statements of the scenario they are
    about (a step number would drift when a scenario gains a line), and every
    `` `X: ...` `` statement an exercise names is in one of the notebook's
    scenarios."""
    env, statements = {}, set()
    for code in code_cells(path):
        for name, rel in re.findall(r'^(\w+) = (?:str\(tb\.scenario_path\()?"(data/scenarios/[^"]+\.thp)"', code, re.M):
            env[name] = rel
    for rel in set(env.values()) | set(re.findall(r'"(data/scenarios/[^"]+\.thp)"', path.read_text())):
        statements |= {st.text for st in parse_file(str(ROOT / rel)).statements}
    checked = 0
    for code in code_cells(path):
        for node in ast.walk(ast.parse(code)):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg not in ("start", "after"):
                    continue
                assert not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int)), \
                    f"{path.name}: {kw.arg}= must name a statement, not a step number: {ast.unparse(node)}"
                if not isinstance(kw.value, ast.Constant):
                    continue  # a loop over statements the exercise names (checked below)
                rel = _scenario_of(node, env)
                if kw.value.value == "decisive" or rel is None:
                    continue
                texts = [st.text for st in parse_file(str(ROOT / rel)).statements]
                assert any(t.startswith(kw.value.value) for t in texts), \
                    f"{path.name}: {rel} has no statement {kw.value.value!r}"
                checked += 1
    for m in re.finditer(r"^\*\*Exercise (\w+)\.\*\*\n(.*?)(?=\n\n)", path.read_text(), re.S | re.M):
        for stmt in re.findall(r"`((?:[A-Z]: )?(?:mmap|write|read|pin|fork|exit|munmap|split_pmd|mprotect)[^`]*)`",
                               m.group(2)):
            if re.match(r"^[A-Z]: ", stmt):
                assert stmt in statements, f"{path.name}: exercise {m.group(1)} names {stmt!r}, not in its scenarios"
                checked += 1
    if path.stem != "solutions" and path.stem != "03-sandbox":
        assert checked, f"{path.name} names no statement"


def test_the_sandbox_a_reader_clicks_starts_empty():
    """In notebook 3 the displayed sandbox is never fed by later cells, so
    after Run All it is still empty for the reader."""
    path = ROOT / "notebooks" / "03-sandbox.md"
    cells = code_cells(path)
    shown = None
    for i, code in enumerate(cells):
        tree = ast.parse(code)
        last = tree.body[-1] if tree.body else None
        made = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and isinstance(n.value, ast.Call) and ast.unparse(n.value.func) == "Sandbox" for t in n.targets}
        if made and isinstance(last, ast.Expr) and isinstance(last.value, ast.Name) and last.value.id in made:
            shown = (i, last.value.id)
            break
    assert shown, "notebook 3 shows no sandbox"
    i, name = shown
    for code in cells[i + 1:]:
        assert not re.search(rf"\b{name}\.(add|do|undo|select)\(", code), f"a later cell changes {name}"
    assert not re.search(rf"\b{name}\.(add|do)\(", cells[i])

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
