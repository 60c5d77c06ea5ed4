"""What `python -m helpers` (and the `cinic10` script) does: profiles and their validation,
running the notebooks with papermill (and what the terminal shows meanwhile), the Ray cluster
check, and the stitched HTML/PDF report. run.json is helpers.artifacts'."""
