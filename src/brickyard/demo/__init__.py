"""The demo workspace: real Titanic and NYC-taxi data, synthetic taxi trips, and a tour."""

from brickyard.demo.runner import STEPS, DemoContext, Reporter, run_demo

__all__ = ["STEPS", "DemoContext", "Reporter", "run_demo"]
