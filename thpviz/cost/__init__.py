"""Cost accounting and cost models.

The engine records, for every fault, what the modelled kernel code path
touches (:data:`COST_FIELDS`; rules in :mod:`thpviz.eras.cost_rules`, documented in
docs/cost-model.md).  This package reads those records
(:mod:`~thpviz.cost.accounting`), runs generated scenarios for the cost plots
(:mod:`~thpviz.cost.experiments`), draws them (:mod:`~thpviz.cost.plots`,
matplotlib; import it explicitly), tabulates them (:mod:`~thpviz.cost.tables`),
keeps reported and measured numbers apart from modelled ones
(:mod:`~thpviz.cost.reported`, ``data/measured/``) and wraps the plots in a
notebook widget (:class:`thpviz.widgets.CostExplorer`, ipywidgets).
"""

from .accounting import (
    COST_FIELDS,
    STATEMENT_FIELDS,
    FaultCost,
    fault_costs,
    fault_total,
    last_write_fault,
    pins_lost,
    run_totals,
    step_costs,
)

__all__ = [
    "COST_FIELDS", "STATEMENT_FIELDS", "FaultCost", "fault_costs", "fault_total",
    "last_write_fault", "pins_lost", "run_totals", "step_costs",
]
