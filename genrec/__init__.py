"""genrec: generative, language-model-based recommendation beside classical baselines.

Importing the package stays light: heavy libraries (torch, transformers, implicit) are imported
inside the models that need them.
"""

from genrec._version import __version__

from genrec.data.catalog import Catalog, Item
from genrec.data.sequences import Sequences
from genrec.data.splits import Case, Split, make_split
from genrec.models.base import Recommendations, Recommender

__all__ = [
    "Catalog",
    "Item",
    "Sequences",
    "Case",
    "Split",
    "make_split",
    "Recommendations",
    "Recommender",
    "__version__",
]
