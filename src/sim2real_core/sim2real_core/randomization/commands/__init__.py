"""Commands of the guided randomization methods."""
