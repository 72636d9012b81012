"""The feature store: online store (SQLite, Redis), materialization, lookups for serving."""
