"""The analysis of a study: the comparison of its ablations with statistics and priors (`comparison.py`),
the Markdown report (`report.py`) and the plots (`plots.py`). `mlproject/analyze.py` runs it.
"""
