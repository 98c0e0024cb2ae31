"""Loaders: one module per published layout; the registry in genrec.data.registry names them."""
