"""The Typer layer: parse arguments, call one core function, render its result."""
