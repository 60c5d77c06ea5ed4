"""How the code was started, without importing TensorFlow."""

import os


def is_batch() -> bool:
    """True under the runner (papermill): one compact line per epoch instead of progress bars."""
    return os.environ.get("CINIC10_BATCH") == "1"
