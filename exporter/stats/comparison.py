"""Two versions of one model compared directly (champion vs challenger), as pure functions of counts.

The recording rules of ``alert_rules/champion_rules.py`` compute the same numbers in PromQL; the rollout
gate's decision rule is "statistic >= critical value" on these (docs/rollouts.md).

    >>> round(homogeneity_chisquare([50, 50], [30, 70])[0], 4)
    8.3333
    >>> round(two_proportion_z(100, 1000, 130, 1000), 4)   # the challenger's rate is higher: worse
    2.1027
"""

from __future__ import annotations

import math

import numpy as np


def homogeneity_chisquare(champion: np.ndarray | list[float], challenger: np.ndarray | list[float]) -> tuple[float, int]:
    """Pearson's chi-square of the 2 x k table of two arms' bin counts, and its degrees of freedom.

    Bins neither arm filled are left out (scipy's chi2_contingency refuses them): dof = filled - 1.
    X^2 = sum_j (b_j A - a_j B)^2 / (a_j + b_j) / (A B), A and B the arms' totals.
    """
    a, b = np.asarray(champion, dtype=np.float64), np.asarray(challenger, dtype=np.float64)
    filled = (a + b) > 0
    a, b = a[filled], b[filled]
    total_a, total_b = a.sum(), b.sum()
    if total_a <= 0 or total_b <= 0 or len(a) < 2:
        return float("nan"), max(int(filled.sum()) - 1, 0)
    statistic = float(np.sum((b * total_a - a * total_b) ** 2 / (a + b)) / (total_a * total_b))
    return statistic, int(filled.sum()) - 1


def two_proportion_z(x_champion: float, n_champion: float, x_challenger: float, n_challenger: float,
                     lower_is_better: bool = True) -> float:
    """Pooled two-proportion z, positive when the challenger is worse; NaN when it is undefined."""
    if n_champion <= 0 or n_challenger <= 0:
        return float("nan")
    p_a, p_b = x_champion / n_champion, x_challenger / n_challenger
    pooled = (x_champion + x_challenger) / (n_champion + n_challenger)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_champion + 1 / n_challenger))
    if se <= 0:
        return float("nan")
    z = (p_b - p_a) / se
    return z if lower_is_better else -z
