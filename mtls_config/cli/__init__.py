"""The command line: thin typer commands that parse, call the library, render and pick an exit code.

The only package that prints. Exit codes: 0 ok / no changes, 1 error, 2 changes present (plan, drift).
"""
