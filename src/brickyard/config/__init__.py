"""Workspace configuration: models, YAML loading with line numbers, secret references."""

from brickyard.config.loader import CONFIG_FILE, load_config, parse_model
from brickyard.config.models import WorkspaceConfig
from brickyard.config.secrets import mask, resolve

__all__ = ["CONFIG_FILE", "WorkspaceConfig", "load_config", "mask", "parse_model", "resolve"]
