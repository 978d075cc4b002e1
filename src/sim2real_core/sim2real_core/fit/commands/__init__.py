"""`sim2real fit`: the command module of fitting."""
