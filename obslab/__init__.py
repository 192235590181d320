"""obslab: an observability lab for Linux."""

__version__ = "0.1.0"
