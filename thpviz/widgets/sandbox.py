"""``Sandbox``: build a scenario by clicking, watch the state, export it.

>>> from thpviz.widgets import Sandbox
>>> sb = Sandbox("4.5")
>>> sb.add("P: mmap A"); sb.add("P: write A")      # the buttons do the same
>>> print(sb.text)                                  # a .thp file thpviz check accepts

Every action appends one statement of the scenario language.  The text is
parsed again (cheap, and the parser needs the statements before it to judge
the new one), but only the new statement runs: the world after it is the
last snapshot plus that one step (``thpviz.scenario.runner.execute``), which
is what ``thpviz run`` computes for the exported file.  A statement the
parser rejects, or that the modelled kernel refuses, is not kept (the
message says why).  ``undo`` drops the last statement and its snapshot.  The
era control reruns the statements under another era.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..render.source import era_of
from ..scenario.parser import range_text
from . import panels

if TYPE_CHECKING:
    from ..scenario.parser import Scenario
    from ..scenario.runner import Run

_ids = itertools.count(1)

PROC_NAMES = ("P", "C", "D", "E", "F", "G", "H", "I", "J", "K")
REGION_NAMES = tuple("ABFGKLMNQRSTUVWXYZ")

#: button label -> the operation it appends
RANGE_OPS = {
    "read": "read", "write": "write", "pin rw": "pin_rw", "pin ro": "pin_ro", "vmsplice": "vmsplice",
    "munmap": "munmap", "dontneed": "dontneed", "dontfork": "dontfork", "mprotect ro": "mprotect_ro",
    "mprotect rw": "mprotect_rw", "split_pmd": "split_pmd", "split_page": "split_page",
}
PROC_OPS = {"mmap": "mmap", "fork": "fork", "exit": "exit"}
PIN_OPS = {"unpin": "unpin", "dma_write": "dma_write", "dma_read": "dma_read"}


def check_title(title: str) -> str:
    """A title the exported ``title:`` header keeps exactly (the parser's
    rule, :func:`thpviz.scenario.parser.header_value`): one line, no ``#``,
    no control characters."""
    from ..scenario.parser import header_value

    return header_value("title", title)


class Sandbox(widgets.VBox):
    """A scenario built by clicking, run under ``era`` with ``thp`` subpages
    per huge page."""

    def __init__(self, era="4.5", thp: int = 8, title: str = "built in the thpviz sandbox", **kw):
        from ..eras import ERAS
        from ..scenario.parser import format_header

        self.era = era_of(era)
        format_header(thp=thp)  # ValueError for a thp the language cannot hold
        self.thp = thp
        self.title = check_title(title)  # ValueError for a title the export could not hold
        self.lines: list[str] = []
        self._reset_run()
        self.uid = f"thpviz-sandbox-{next(_ids)}"
        self.message = widgets.HTML()
        self.era_picker = widgets.Dropdown(options=list(ERAS), value=self.era.id, description="era",
                                           layout=widgets.Layout(width="180px"))
        self.era_picker.observe(lambda ch: self.set_era(ch["new"]), names="value")
        self.proc = widgets.Dropdown(description="process", layout=widgets.Layout(width="180px"))
        self.region = widgets.Dropdown(description="region", layout=widgets.Layout(width="180px"))
        self.range = widgets.IntRangeSlider(min=0, max=thp - 1, value=(0, thp - 1), description="subpages",
                                            layout=widgets.Layout(width="420px"))
        self.extents = widgets.BoundedIntText(value=1, min=1, max=8, description="extents",
                                              layout=widgets.Layout(width="150px"))
        self.pin = widgets.Dropdown(description="pin", layout=widgets.Layout(width="180px"))
        self.buttons: dict[str, widgets.Button] = {}
        for label, op in {**PROC_OPS, **RANGE_OPS, **PIN_OPS}.items():
            b = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
            b.on_click(lambda _b, op=op: self.do(op))
            self.buttons[label] = b
        quick = {}
        for label, part in (("all", "all"), ("first half", "low"), ("second half", "high")):
            b = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
            b.on_click(lambda _b, part=part: self.select(part))
            quick[label] = b
        self.undo_button = widgets.Button(description="undo", button_style="warning")
        self.undo_button.on_click(lambda _b: self.undo())
        self.source = widgets.Textarea(layout=widgets.Layout(width="100%", height="180px"),
                                       description="", disabled=True)
        self.details = widgets.HTML()
        self.diagram = widgets.HTML()
        self.drawing = panels.AsyncDiagram(self.diagram)
        self.table = widgets.HTML()
        self.proc.observe(lambda _c: self.refresh_regions(), names="value")
        self.region.observe(lambda _c: self.refresh_range(), names="value")
        b = self.buttons
        rows = [
            widgets.HBox([self.era_picker, self.proc, self.extents, b["mmap"], b["fork"], b["exit"],
                          self.undo_button]),
            widgets.HBox([self.region, self.range] + list(quick.values())),
            widgets.HBox([b[k] for k in RANGE_OPS]),
            widgets.HBox([self.pin] + [b[k] for k in PIN_OPS]),
        ]
        super().__init__(rows + [self.message, self.details, self.diagram, self.table, self.source], **kw)
        self.update()

    # ------------------------------------------------------------- the text
    @property
    def text(self) -> str:
        """The scenario built so far, with an ``expect`` line for the era
        stating what the engine found (so ``thpviz check`` re-checks it)."""
        from ..scenario.parser import format_header

        out = format_header(title=self.title, source="thpviz sandbox", thp=self.thp) + [""]
        out += self.lines
        if self.run is not None and self.lines:
            v = " ".join(sorted(self.run.violations)) or "clean"
            out += ["", f"expect {self.era.id}: {self.run.last_write} {v}"]
        return "\n".join(out) + "\n"

    def _body(self, lines) -> str:
        return f"thp: {self.thp}\n" + "\n".join(lines) + "\n"

    # ------------------------------------------------------ the run so far
    def _reset_run(self) -> None:
        from ..model.world import World

        self._steps: list = []
        self._snaps: list = [World(self.era, self.thp)]
        self._scn: Scenario | None = None
        self.run: Run | None = None

    def _make_run(self) -> None:
        from ..scenario import Run

        if not self._steps:
            self.run = None
            return
        assert self._scn is not None  # set with the first statement
        self.run = Run(self._scn, self.era, list(self._steps), self._snaps[-1], list(self._snaps))

    # ------------------------------------------------------------ actions
    def add(self, line: str) -> bool:
        """Append one statement and run it alone on the last snapshot; keep
        it only if it is one statement line that parses, names only counters
        the era has, is accepted by the modelled kernel and, for an assert,
        holds (the export must pass ``thpviz check``).  Returns whether it
        was kept."""
        from ..model.events import ThpvizDefect
        from ..scenario import ScenarioError, check_eras, parse_text
        from ..scenario.parser import check_statement_line
        from ..scenario.runner import execute

        lines = self.lines + [line]
        try:
            check_statement_line(line, "<sandbox>")
            scn = parse_text(self._body(lines), "<sandbox>")
            check_eras(scn, [self.era])
        except ScenarioError as err:
            return self._refuse(err.errors[0])
        if len(scn.statements) != len(self._steps) + 1:
            return self._refuse("not a statement (a comment or an empty line adds nothing)")
        world = self._snaps[-1].clone()
        try:
            world, step = execute(world, self.era, scn.statements[-1])
        except ThpvizDefect as err:
            return self._refuse(f"internal inconsistency (a thpviz bug): {err}")
        if step.error:
            return self._refuse(f"refused: {step.error}")
        if step.assertion is not None and not step.assertion[0]:  # the export must check clean
            return self._refuse(f"not kept: {step.assertion[2]}")
        self.lines, self._scn = lines, scn
        self._steps.append(step)
        self._snaps.append(world)
        self._make_run()
        self.message.value = f"added <code>{panels.e(line)}</code>"
        self.update()
        return True

    def _refuse(self, why: str) -> bool:
        self.message.value = f'<span style="color:#D55E00">{panels.e(why)}</span>'
        return False

    def wait(self) -> None:
        """Block until the diagram of the current state is drawn."""
        self.drawing.wait()

    def undo(self) -> None:
        """Drop the last statement and the snapshot it made."""
        if not self.lines:
            return
        self.lines = self.lines[:-1]
        self._steps.pop()
        self._snaps.pop()
        if self._scn is not None:
            self._scn.statements = self._scn.statements[:-1]
        self._make_run()
        self.message.value = "undone"
        self.update()

    def set_era(self, era) -> None:
        """Run the statements again under another era (a statement that era
        refuses is kept and shown as refused)."""
        from ..scenario import ScenarioError, check_eras, parse_text, run

        new = era_of(era)
        if new.id == self.era.id:
            return
        if self.lines:
            try:
                check_eras(parse_text(self._body(self.lines), "<sandbox>"), [new])
            except ScenarioError as err:
                self.era_picker.value = self.era.id
                self._refuse(err.errors[0])
                return
        self.era = new
        if self.era_picker.value != new.id:
            self.era_picker.value = new.id
        lines = self.lines
        self._reset_run()
        self.lines = lines
        if lines:
            self._scn = scn = parse_text(self._body(lines), "<sandbox>")
            r = run(scn, new, keep_snapshots=True)
            assert r.snapshots is not None  # keep_snapshots=True
            self._steps, self._snaps = list(r.steps), list(r.snapshots)
            self._make_run()
            refused = [f"line {s.stmt.line}" for s in r.steps if s.error]
            self.message.value = f"era {panels.e(new.id)}" + (
                f'; <span style="color:#D55E00">refused there: {", ".join(refused)}</span>' if refused else "")
        else:
            self.message.value = f"era {panels.e(new.id)}"
        self.update()

    def do(self, op: str) -> bool:
        """Append the statement for button ``op`` with the current choices."""
        line = self.line_for(op)
        if line is None:
            return False
        return self.add(line)

    def select(self, part: str) -> None:
        """Select all, the first half or the second half of the region."""
        hi = self.range.max
        n = hi + 1
        self.range.value = {"all": (0, hi), "low": (0, n // 2 - 1), "high": (n // 2, hi)}[part]

    # -------------------------------------------------------------- helpers
    def _world(self):
        return self.run.world if self.run is not None else None

    def alive(self) -> list[str]:
        w = self._world()
        return [m.name for m in w.alive_mms()] if w is not None else []

    def _used(self) -> set:
        w = self._world()
        return set(w.mms) if w is not None else set()

    def _new_name(self, pool, used) -> str | None:
        for n in pool:
            if n not in used:
                return n
        return None

    def _regions(self, proc) -> dict:
        w = self._world()
        if w is None or proc not in w.mms:
            return {}
        return dict(w.mms[proc].regions)

    def line_for(self, op: str) -> str | None:
        p = self.proc.value
        if op == "mmap":
            w = self._world()
            used = set()
            if w is not None:
                for m in w.mms.values():
                    used.update(m.regions)
            name = self._new_name(REGION_NAMES, used)
            n = self.extents.value
            return f"{p}: mmap {name}" + (f" {n}" if n != 1 else "")
        if op == "fork":
            child = self._new_name(PROC_NAMES, self._used())
            return f"{p}: fork {child}"
        if op == "exit":
            return f"{p}: exit"
        if op in PIN_OPS.values():
            if not self.pin.value:
                self.message.value = "no active pin"
                return None
            return f"{op} {self.pin.value}" if op != "unpin" else f"unpin {self.pin.value}"
        reg = self.region.value
        if not reg:
            self.message.value = "map a region first"
            return None
        size = self._regions(p)[reg][1]
        lo, hi = self.range.value
        rng = range_text(reg, size, lo, hi + 1)
        pins: set[str] = set(self.run.world.pins) if self.run is not None else set()
        if op in ("pin_rw", "pin_ro"):
            name = self._new_name([f"pin{i}" for i in range(1, 100)], pins)
            return f"{p}: pin {rng} {op[-2:]} as {name}"
        if op == "vmsplice":
            name = self._new_name([f"pipe{i}" for i in range(1, 100)], pins)
            return f"{p}: vmsplice {rng} as {name}"
        if op in ("mprotect_ro", "mprotect_rw"):
            return f"{p}: mprotect {rng} {op[-2:]}"
        return f"{p}: {op} {rng}"

    # -------------------------------------------------------------- display
    def refresh_regions(self) -> None:
        regs = self._regions(self.proc.value)
        names = list(regs)
        self.region.options = names
        if names and self.region.value not in names:
            self.region.value = names[0]
        self.refresh_range()

    def refresh_range(self) -> None:
        regs = self._regions(self.proc.value)
        if self.region.value in regs:
            size = regs[self.region.value][1]
            if self.range.max != size - 1:
                self.range.value = (0, 0)
                self.range.max = size - 1
                self.range.value = (0, size - 1)

    def update(self) -> None:
        alive = self.alive()
        new = self._new_name(PROC_NAMES, self._used())
        opts = alive + ([new] if new and new not in alive else [])
        keep = self.proc.value if self.proc.value in opts else (opts[0] if opts else None)
        self.proc.options = opts
        self.proc.value = keep
        w = self._world()
        pins = [n for n, pn in w.pins.items() if pn.active] if w is not None else []
        keep_pin = self.pin.value if self.pin.value in pins else (pins[-1] if pins else None)
        self.pin.options = pins
        self.pin.value = keep_pin
        self.refresh_regions()
        self.source.value = self.text
        if self.run is None:
            self.details.value = self.diagram.value = self.table.value = ""
            return
        k = len(self.run.steps)
        scene = panels.scene_at(self.run, k)
        self.details.value = panels.statement_html(self.run, k, None) + panels.details_html(scene)
        self.drawing.show(scene, f"{self.uid}-{k}")
        self.table.value = panels.counter_table_html(scene)
