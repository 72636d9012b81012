"""The demo workspace: real Titanic and NYC-taxi data, synthetic taxi trips, and a tour."""

from brickyard.demo.context import DemoContext, Reporter
from brickyard.demo.runner import STEPS, run_demo, try_next_block

__all__ = ["STEPS", "DemoContext", "Reporter", "run_demo", "try_next_block"]
