"""The `mutualaid` command (Typer)."""
