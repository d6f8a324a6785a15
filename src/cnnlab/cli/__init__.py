"""Command-line interface: ``cnnlab COMMAND ...``."""
