"""keylane's command line (Typer)."""
