"""The `brickyard` command line."""
