"""The lake: Delta tables addressed `zone.name` under a local or `abfs://` root."""

from brickyard.lake.location import LakeLocation
from brickyard.lake.names import TableName
from brickyard.lake.tables import Column, DataFile, IfCommitted, Lake, TableFiles, TableInfo, WriteMode

__all__ = [
    "Column", "DataFile", "IfCommitted", "Lake", "TableFiles", "LakeLocation", "TableInfo", "TableName", "WriteMode",
]
