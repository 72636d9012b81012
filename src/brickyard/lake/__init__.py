"""The lake: Delta tables addressed `zone.name` under a local or `abfs://` root."""

from brickyard.lake.location import LakeLocation
from brickyard.lake.names import TableName
from brickyard.lake.tables import Column, DataFile, Lake, TableFiles, TableInfo

__all__ = ["Column", "DataFile", "Lake", "TableFiles", "LakeLocation", "TableInfo", "TableName"]
