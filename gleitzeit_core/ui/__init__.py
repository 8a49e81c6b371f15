"""The dashboard (`gleitzeit ui`): a Starlette app over the store, below the CLI that starts it."""
