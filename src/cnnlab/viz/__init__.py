"""Matplotlib figures (PNG), drawn off-screen and written atomically."""
