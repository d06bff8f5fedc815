"""The panhuo command line (Typer + Rich): ``main`` is the entry point, one module per command group."""
