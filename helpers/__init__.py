"""The CINIC-10 study notebooks' plumbing, in layers importing only downwards (docs/code.md)."""

import os

# TensorFlow's C++ INFO/WARNING lines drown the notebooks' output (errors still show); set
# before any module imports TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
