"""Evaluation of trained runs: metrics on generated videos, and the analysis of whole studies.

This package depends on `text2sign` and never the other way round.
"""
