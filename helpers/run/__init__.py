"""What `python -m helpers` does: profiles, the runner, the Ray cluster check, the report."""
