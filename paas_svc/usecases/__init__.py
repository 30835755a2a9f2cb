"""What the commands do: one module per use case, called by the CLI and the API alike."""
