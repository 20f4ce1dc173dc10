"""Adapting to the text being read, gathered in one place: the neural cache (cache.py), dynamic
evaluation (dynamic.py) and their settings (settings.py). Reading with them is the Reader's job
(reader.py), for scoring and generating alike.
"""

from .cache import NeuralCache, mix
from .dynamic import DynamicWeights
from .reader import EVAL_CHUNK
from .settings import Adaptation, CacheSettings, DynamicSettings

__all__ = [
    "EVAL_CHUNK",
    "Adaptation",
    "CacheSettings",
    "DynamicSettings",
    "DynamicWeights",
    "NeuralCache",
    "mix",
]
