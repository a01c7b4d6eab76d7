"""compose package."""
