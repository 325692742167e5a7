"""Subcommands of the `attnconf` CLI, one module each (see attnconf.cli)."""
