"""sim2real core."""
