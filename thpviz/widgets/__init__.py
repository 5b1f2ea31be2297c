"""ipywidgets front ends for notebooks (Binder, Colab, JupyterLab).

* :class:`ScenarioPlayer` -- step through a scenario under one era;
* :class:`EraCompare` -- one scenario under several eras, side by side;
* :class:`Sandbox` -- build a scenario by clicking and export it as ``.thp``;
* :class:`CostExplorer` -- the cost model's figures behind sliders.

Each accepts a scenario file path, scenario text, or a parsed Scenario.
Callbacks are thin: each calls one method, and the HTML they show is made by
the plain functions of :mod:`thpviz.widgets.panels`.  For pages without a
kernel, use :mod:`thpviz.render.storyboard` instead.
"""

from .compare import EraCompare
from .cost_explorer import CostExplorer
from .player import ScenarioPlayer
from .sandbox import Sandbox

__all__ = ["CostExplorer", "EraCompare", "Sandbox", "ScenarioPlayer"]
