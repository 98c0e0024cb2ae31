"""Data: catalog, sequences, preprocessing, splits and loaders."""
