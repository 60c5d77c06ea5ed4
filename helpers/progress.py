"""Progress bars that suit where they run: widgets in JupyterLab, plain text on stderr under
the runner (papermill), so executed notebooks and the report carry no widget debris."""

from __future__ import annotations

import sys
import warnings

from .training_env import is_batch


def progress_bar(**kwargs):
    """A tqdm bar: tqdm.auto interactively, plain tqdm to stderr in batch runs."""
    if is_batch():
        from tqdm import tqdm

        return tqdm(file=sys.stderr, **kwargs)
    with warnings.catch_warnings():  # tqdm.auto warns if ipywidgets is missing (an old .venv)
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(**kwargs)
