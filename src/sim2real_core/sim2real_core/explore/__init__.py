"""Exploration: policies learned in simulation that collect informative data on the target system."""
