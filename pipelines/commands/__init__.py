"""One module of ``riskctl`` subcommands per area; ``pipelines.cli`` mounts them."""
