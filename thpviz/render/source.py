"""Accept a scenario as a file path, scenario text, a parsed Scenario or a
Run, and run it under an era with snapshots kept."""

from __future__ import annotations

import os


def load_scenario(source):
    """(Scenario, source text or None) from a path, text or Scenario."""
    from ..scenario import Scenario, parse_file, parse_text

    if isinstance(source, Scenario):
        text = None
        if source.path and os.path.isfile(source.path):
            with open(source.path, encoding="utf-8") as f:
                text = f.read()
        return source, text
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise TypeError(f"expected a scenario path, text or Scenario, not {type(source).__name__}")
    if "\n" not in source and os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            text = f.read()
        return parse_file(source), text
    if "\n" not in source and source.endswith(".thp"):
        # looks like a path, and does not exist: let parse_file say so
        return parse_file(source), None
    return parse_text(source, "<scenario>"), source


def era_of(era):
    from ..eras import get

    return get(era) if isinstance(era, str) else era


def load_run(source, era):
    """A Run with snapshots: ``source`` may already be a Run."""
    from ..scenario import Run, run

    if isinstance(source, Run):
        if source.snapshots is None:
            return run(source.scenario, source.era, keep_snapshots=True)
        return source
    scn, _ = load_scenario(source)
    if era is None:
        from ..scenario import eras_for

        era = eras_for(scn)[0]
    return run(scn, era_of(era), keep_snapshots=True)


def comment_of(text: str | None, line: int) -> str:
    """The ``#`` comment on line ``line`` (1-based) of the scenario text."""
    if not text:
        return ""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    raw = lines[line - 1]
    return raw.split("#", 1)[1].strip() if "#" in raw else ""
