"""Implementations of the tools Source protocol (embedded DuckDB, upstream FOCUS API)."""
