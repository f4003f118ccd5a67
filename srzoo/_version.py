"""The version of srzoo (one place; ``srzoo.__version__`` and the User-Agent read it)."""

__version__ = "0.1.0"
