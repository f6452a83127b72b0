"""``polyfeed ...``: the command line (typer for the arguments, rich for what a person reads)."""
