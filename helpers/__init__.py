"""Helpers shared by the CINIC-10 study notebooks."""
