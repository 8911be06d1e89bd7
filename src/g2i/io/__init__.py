"""File writing helpers: atomic outputs and byte-deterministic formats."""
