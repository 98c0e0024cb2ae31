"""The nouns every model and every consumer share: typed explanations (``why``), and the
recommender protocol with its declared capabilities."""
