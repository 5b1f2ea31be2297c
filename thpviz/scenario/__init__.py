"""The scenario language: parser, runner, reports, loaders."""

from .parser import Scenario, ScenarioError, check_eras, parse_file, parse_text, parse_verdict
from .runner import Run, eras_for, run

__all__ = ["Run", "Scenario", "ScenarioError", "check_eras", "eras_for", "parse_file", "parse_text", "parse_verdict",
           "run"]
