"""`python -m evaluation.metrics.fvd REAL FAKE`: the command lives in `evaluation.metrics.fvd.cli`, which imports the metric
(this package) and is imported by nothing in it, so the two do not import each other."""

from evaluation.metrics.fvd.cli import main

raise SystemExit(main())
