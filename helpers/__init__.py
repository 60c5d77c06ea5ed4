"""Helpers shared by the CINIC-10 study notebooks, in layers that import only downwards:
base and atomic (errors, paths, write-then-rename) and artifacts (the run folder); data;
models (nets, pretrained bases, training, evaluation); experiments (one module per notebook,
findings, the trial store); plots; run (profiles, the runner, the report, the command line)."""

import os

# TensorFlow's C++ INFO/WARNING lines (CPU instruction hints, oneDNN notices) drown the
# notebooks' own output; errors still show. Set before any module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
