"""Multivariate drift: PCA reconstruction error of each record against the reference's.

Per-feature scores miss a change in how features move *together* (two features that were
correlated stop being so, each marginal unchanged). A PCA basis fitted on the standardised
numeric features of the reference captures the reference's correlation structure; a record that
breaks it reconstructs badly. At profile build the basis and the reference distribution of the
reconstruction error are stored in ``Profile.extras["pca"]``.

Windowed state stays O(bins): each record's error is binned against equal-mass edges of the
reference errors (10 bins plus under/overflow, as a numeric feature), and the window histogram is
compared with the reference one by PSI (the score; same rules of thumb as features) and binned KS
(the p-value). A histogram rather than windowed sums of error and error^2 because the error is
heavy-tailed: one outlier dominates a mean, the histogram says how much of the mass moved, and
it merges across replicas like any bin counter.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); data = np.hstack([x, x + 0.1 * rng.normal(size=(2000, 1))])
    >>> basis = fit_pca(data, ("a", "b"))
    >>> basis.components.shape
    (1, 2)
    >>> float(basis.errors(np.array([[1.0, 1.0]]))[0]) < float(basis.errors(np.array([[1.0, -1.0]]))[0])
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from exporter.profiles.profile import Binning, Profile, ProfileError, numeric_binning

EXTRAS_KEY = "pca"
MIN_ROWS = 50  # fewer complete reference rows than this give no stable basis: no multivariate drift
EXPLAINED = 0.8  # keep the fewest components that explain this share of the standardised variance
ERROR_BINS = 10


@dataclass(frozen=True)
class PcaBasis:
    """Standardisation, principal axes, and the reference distribution of the reconstruction error."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # k x d, orthonormal rows
    error_binning: Binning

    def errors(self, matrix: np.ndarray) -> np.ndarray:
        """Squared distance of each standardised row from the principal subspace: |z|^2 - |V z|^2."""
        z = (matrix - self.mean) / self.scale
        projected = z @ self.components.T
        return np.maximum((z * z).sum(axis=1) - (projected * projected).sum(axis=1), 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "components": self.components.tolist(),
            "error": self.error_binning.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> PcaBasis:
        """The basis from a profile's extras, shape and values checked: a bad basis would fail every ingest."""
        if not isinstance(data, dict):
            raise ProfileError("extras.pca must be an object")
        features = data.get("features")
        if not isinstance(features, list) or len(features) < 2 or not all(isinstance(f, str) for f in features):
            raise ProfileError("extras.pca.features must list at least 2 feature names")
        d = len(features)
        mean, scale, components = (_matrix(data.get(key), key) for key in ("mean", "scale", "components"))
        if mean.shape != (d,) or scale.shape != (d,):
            raise ProfileError(f"extras.pca: mean and scale must hold {d} numbers, one per feature")
        if components.ndim != 2 or components.shape[1] != d or not 1 <= components.shape[0] < d:
            raise ProfileError(f"extras.pca.components must be k x {d} with 1 <= k < {d}")
        if not (scale > 0).all():
            raise ProfileError("extras.pca.scale must be positive")
        error_binning = Binning.from_json("extras.pca.error", data.get("error"))
        if error_binning.kind != "numeric":
            raise ProfileError("extras.pca.error must be a numeric binning")
        return cls(tuple(features), mean, scale, components, error_binning)


def _matrix(value: Any, key: str) -> np.ndarray:
    """A finite float array from nested JSON lists; ragged or non-numeric lists are refused."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"extras.pca.{key} must be numbers (a list, or a list of equal-length lists)") from None
    if not np.isfinite(array).all():
        raise ProfileError(f"extras.pca.{key} must be finite")
    return array


def fit_pca(matrix: np.ndarray, features: Sequence[str], explained: float = EXPLAINED) -> PcaBasis | None:
    """Fit on complete rows; None with fewer than 2 numeric features or MIN_ROWS complete rows."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        return None
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    if len(matrix) < MIN_ROWS:
        return None
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)  # a constant feature contributes nothing, not NaN
    z = (matrix - mean) / scale
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    share = np.cumsum(singular**2) / max(float((singular**2).sum()), 1e-300)
    # At most d-1 components: with all d the error is 0 by construction and says nothing.
    k = int(min(np.searchsorted(share, explained) + 1, matrix.shape[1] - 1))
    basis = PcaBasis(tuple(features), mean, scale, vt[:k], numeric_binning("__pca_error__", np.zeros(1), 1))
    return PcaBasis(basis.features, mean, scale, vt[:k], numeric_binning("__pca_error__", basis.errors(matrix), ERROR_BINS))


def basis_of(profile: Profile | None) -> PcaBasis | None:
    data = profile.extras.get(EXTRAS_KEY) if profile is not None else None
    return PcaBasis.from_json(data) if data else None
