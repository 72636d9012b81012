"""Pure domain definitions: pipelines, contracts."""
