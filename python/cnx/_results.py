"""What classify and classify_iter return."""
from dataclasses import dataclass
from typing import List, Optional

import numpy as np


@dataclass
class ClassifyResult:
    """Engine.classify's results, one row per input, in input order.

    indices: int32 [n, k], most probable first; -1 where the input failed.
    probs:   float32 [n, k], softmax over all classes; NaN where it failed.
    errors:  None, or the message naming the input and the cause, per input.
    labels:  the class names of indices ([n][k], None where it failed), or
             None when the model has no class names.
    """
    indices: np.ndarray
    probs: np.ndarray
    errors: List[Optional[str]]
    labels: Optional[List[List[Optional[str]]]]

    def __len__(self):
        return len(self.errors)


@dataclass
class FileResult:
    """One file's result from Engine.classify_iter."""
    index: int               # in the list of paths
    path: str
    indices: np.ndarray      # int32 [k]; -1 when the file failed
    probs: np.ndarray        # float32 [k]; NaN when the file failed
    labels: Optional[List[Optional[str]]]
    error: Optional[str]     # None on success, else "PATH: cause"

    @property
    def ok(self):
        return self.error is None
