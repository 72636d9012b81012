"""The lake: Delta tables addressed `zone.name` under a local or `abfs://` root."""

from brickyard.lake.location import LakeLocation
from brickyard.lake.names import TableName
from brickyard.lake.tables import Column, Lake, TableInfo

__all__ = ["Column", "Lake", "LakeLocation", "TableInfo", "TableName"]
