"""A found trace as a ``.thp`` litmus file, with an ``expect`` line for every
implemented era computed by running it under that era."""

from __future__ import annotations

import re

from ..model.events import ThpvizDefect


def verdict(run) -> str:
    """``DECISION VIOLATIONS|clean``, as an ``expect`` line spells it."""
    return " ".join([run.last_write, *(sorted(run.violations) or ["clean"])])


def verdicts(text: str, eras=None) -> dict[str, str | None]:
    """era id -> verdict of the scenario text under each era (default: every
    implemented era); an internal inconsistency is reported as ``None``."""
    from ..eras import ERAS
    from ..scenario import parse_text, run

    scn = parse_text(text, "<trace>")
    out: dict[str, str | None] = {}
    for e in (eras or list(ERAS)):
        try:
            out[e] = verdict(run(scn, ERAS[e]))
        except ThpvizDefect:
            out[e] = None
    return out


def scenario_text(trace: list[str], thp: int, title: str, source: str, notes=(), eras=None) -> str:
    """The trace as a complete ``.thp`` file: header, ``notes`` as comments,
    the statements, and one ``expect`` line per era."""
    title = _one_line(title)
    source = _one_line(source)
    lines = [f"title: {title}", f"source: {source}"]
    lines += [f"# {_one_line(n, keep_hash=True)}" for n in notes]
    lines.append(f"thp: {thp}")
    lines.append("")
    lines += trace
    body = "\n".join(lines) + "\n"
    vs = verdicts(body, eras)
    lines.append("")
    for e, v in vs.items():
        if v is None:
            lines.append(f"# expect {e}: not written: the engine reports an internal inconsistency")
        else:
            lines.append(f"expect {e}: {v}")
    return "\n".join(lines) + "\n"


def _one_line(s: str, keep_hash: bool = False) -> str:
    """Header values end at a ``#`` (a comment): keep them out."""
    s = re.sub(r"\s+", " ", str(s)).strip()
    return s if keep_hash else s.replace("#", "no.")
