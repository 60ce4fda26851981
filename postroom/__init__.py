"""postroom: mail ingestion and project protocols for web agencies."""

__version__ = "0.1.0"  # the one place; pyproject.toml reads it
