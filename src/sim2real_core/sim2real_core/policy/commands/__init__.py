"""`sim2real` subcommands of the policy package (registered in sim2real.cli.COMMANDS)."""
