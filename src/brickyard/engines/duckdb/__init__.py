"""The DuckDB engine (embedded, the default): `DuckDBEngine` in `engine`."""
