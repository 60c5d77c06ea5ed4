"""The CINIC-10 study notebooks' plumbing, in layers importing only downwards (docs/code.md)."""

import os

# before any module imports TensorFlow: its C++ INFO/WARNING lines drown the output (not errors)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
