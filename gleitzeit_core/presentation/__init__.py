"""What the CLI and the dashboard both show (neither imports the other)."""
