"""`python -m brickyard.cli` runs the command line."""

from brickyard.cli.app import run

run()
