"""Recommenders behind one protocol; see :mod:`genrec.models.registry` for the names."""
