"""The embedded DuckDB store: schema, loader and demo data."""
