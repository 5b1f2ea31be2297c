"""Accept a scenario as a file path, scenario text, a parsed Scenario or a
Run, and run it under an era with snapshots kept (for the diagrams, the
storyboards and the widgets)."""

from __future__ import annotations

import os

from .parser import Scenario, ScenarioError, parse_text, read_file, split_lines


def load_scenario(source) -> tuple[Scenario, str | None]:
    """(Scenario, source text or None) from a path, text or Scenario."""
    if isinstance(source, Scenario):
        text = None
        if source.path and os.path.isfile(source.path):
            try:
                text = read_file(source.path)
            except ScenarioError:
                text = None
        return source, text
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise TypeError(f"expected a scenario path, text or Scenario, not {type(source).__name__}")
    if "\n" not in source and (os.path.exists(source) or source.endswith(".thp")):
        # a path (read_file says why it cannot be read, if it cannot)
        text = read_file(source)
        return parse_text(text, source), text
    return parse_text(source, "<scenario>"), source


def era_of(era):
    """An era object from an era or its id."""
    from ..eras import get

    return get(era) if isinstance(era, str) else era


def load_run(source, era):
    """A Run with snapshots: ``source`` may already be a Run."""
    from .runner import Run, eras_for, run

    if isinstance(source, Run):
        if source.snapshots is None:
            return run(source.scenario, source.era, keep_snapshots=True)
        return source
    scn, _ = load_scenario(source)
    if era is None:
        era = eras_for(scn)[0]
    return run(scn, era_of(era), keep_snapshots=True)


def comment_of(text: str | None, line: int) -> str:
    """The ``#`` comment on line ``line`` (1-based) of the scenario text,
    lines counted as the parser counts them."""
    if not text:
        return ""
    lines = split_lines(text)
    if not 1 <= line <= len(lines):
        return ""
    raw = lines[line - 1]
    return raw.split("#", 1)[1].strip() if "#" in raw else ""
