"""What `python -m helpers` (and the `cinic10` script) does: profiles and their validation,
which settings are the study's, running the notebooks with papermill, run.json, the Ray
cluster check, and the stitched HTML/PDF report."""
