"""`sim2real` subcommands of the policy package (registered in sim2real_ros.cli.COMMANDS)."""
