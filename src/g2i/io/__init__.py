"""File writing helpers: atomic outputs, byte-deterministic formats and JSON-safe values."""
