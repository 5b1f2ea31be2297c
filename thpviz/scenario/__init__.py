"""The scenario language: parser, runner, reports."""

from .parser import Scenario, ScenarioError, check_eras, parse_file, parse_text
from .runner import Run, eras_for, run

__all__ = ["Run", "Scenario", "ScenarioError", "check_eras", "eras_for", "parse_file", "parse_text", "run"]
