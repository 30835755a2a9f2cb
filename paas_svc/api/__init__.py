"""`paas serve`: the REST API and the dashboard over the same state and engine as the CLI.

Only `paas serve` imports this package (and with it Starlette and uvicorn): the CLI's hot
commands never load it.
"""
