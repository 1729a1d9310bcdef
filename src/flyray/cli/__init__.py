"""The ``flyray`` command line: a thin adapter over the public SDK."""
