"""`sim2real fit` and `sim2real fit-study` command modules."""
