"""The end-to-end sim-to-real pipeline (`sim2real demo`) and its report."""
