"""The model: struct pages, address spaces, the reverse map, pins."""

from .events import DECISIONS, FaultBatch, OpError, ThpvizDefect
from .world import Pin, World

__all__ = ["DECISIONS", "FaultBatch", "OpError", "Pin", "ThpvizDefect", "World"]
