"""Statistics as pure functions of counts: drift scores (drift.py), multivariate scores (multivariate.py),
quality ratios and intervals (quality_math.py), label-free estimation (estimation.py) and bias (bias.py)."""
