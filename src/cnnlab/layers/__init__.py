"""Reusable torch blocks shared by specs and the model zoo."""
