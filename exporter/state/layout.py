"""Where each column's bins sit in a version's flat count vector, and a batch's counts in it.

All bins of a version (every feature's, then the prediction's) live in one flat vector, so a
batch becomes one ``np.bincount``. Counting is a pure function of typed columns: it runs before
the version's lock is taken, and only the adding happens under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from exporter.config.model import ModelConfig
from exporter.ingest.columns import Column
from exporter.profiles.profile import Binning, Profile


@dataclass(frozen=True)
class Layout:
    """Where each column's bins sit in the flat vector; the prediction is the last column."""

    binnings: tuple[Binning, ...]
    offsets: np.ndarray

    @classmethod
    def of(cls, profile: Profile, model: ModelConfig) -> Layout:
        binnings = tuple(profile.features[f.name] for f in model.features) + (profile.prediction,)
        offsets = np.concatenate([[0], np.cumsum([b.n_bins for b in binnings])]).astype(np.int64)
        return cls(binnings, offsets)

    @property
    def width(self) -> int:
        return int(self.offsets[-1])

    def slice(self, column: int) -> slice:
        return slice(int(self.offsets[column]), int(self.offsets[column + 1]))

    def counts(self, columns: Sequence[Column]) -> np.ndarray:
        """Bin counts of a batch's typed columns (features, then the prediction), as one flat vector."""
        indices = [binning.assign(column.values) + self.offsets[i]
                   for i, (binning, column) in enumerate(zip(self.binnings, columns))]
        return np.bincount(np.concatenate(indices), minlength=self.width)
