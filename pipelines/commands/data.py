"""``riskctl data``: simulate and validate event files."""

import typer

app = typer.Typer(help="Simulate, load and validate event data.", no_args_is_help=True)
