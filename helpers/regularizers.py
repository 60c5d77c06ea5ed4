"""The study's Elastic Net regulariser, serialisable so saved models reload."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="helpers")
class ElasticNetRegularization(keras.regularizers.Regularizer):
    """l_reg = lam * (alpha * l1 + (1 - alpha) * l2), with l1 = sum|w| and l2 = sum w^2."""

    def __init__(self, alpha: float = 0.5, lam: float = 0.01):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"ElasticNetRegularization: alpha must be in [0, 1], got {alpha}")
        if lam < 0:
            raise ValueError(f"ElasticNetRegularization: lam must be >= 0, got {lam}")
        self.alpha = float(alpha)
        self.lam = float(lam)

    def __call__(self, w):
        l1 = ops.sum(ops.abs(w))
        l2 = ops.sum(ops.square(w))
        return self.lam * (self.alpha * l1 + (1.0 - self.alpha) * l2)

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "lam": self.lam}
