"""thpviz: a faithful model of THP page state for the 2016 vfio/THP thread.

Nothing heavy is imported here, so ``thpviz --help`` stays fast; import
``thpviz.model``, ``thpviz.eras`` or ``thpviz.scenario`` directly.
"""

__version__ = "0.1.0"
