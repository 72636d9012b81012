"""Monitoring of models in production: drift of a target's windows against the model
version's training baseline, performance when labels arrive (estimated until then),
alerts with their actions, and the state `brickyard monitors` shows."""
