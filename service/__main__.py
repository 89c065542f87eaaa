"""`python -m service` is the `faultline` CLI."""

from service.cli import app

app()
