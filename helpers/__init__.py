"""Helpers shared by the CINIC-10 study notebooks: data, models, training, experiments,
plots, report and the command line. Importing it registers the project's Keras objects."""

import os

# TensorFlow's C++ INFO/WARNING lines (CPU instruction hints, oneDNN notices) drown the
# notebooks' own output; errors still show. Set before any module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
