"""Exhaustive, bounded search for minimal counterexamples (``thpviz
explore``) and the practice generator (``thpviz practice``)."""
