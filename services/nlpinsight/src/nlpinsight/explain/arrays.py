"""The NumPy array types the modules of :mod:`nlpinsight.explain` pass to each other."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
