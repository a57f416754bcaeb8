"""Recipes: functions that compose the zoo's layers into ready-to-train models, one per task.

`RECIPES` is the one registry of recipe names; `get_recipe(name)` fails with the closest names.
The builders (which import Keras) load on first use, so the registry stays cheap to import.
"""

from keras_attn_zoo.recipes.registry import RECIPES, closest, get_recipe

__all__ = ["ATTENTION_OPTIONS", "RECIPES", "captioning", "closest", "get_recipe", "summarization", "translation"]


def __getattr__(name):
    import importlib

    if name in ("translation", "ATTENTION_OPTIONS"):
        return getattr(importlib.import_module("keras_attn_zoo.recipes.translation_recipe"), name)
    if name == "captioning":
        return importlib.import_module("keras_attn_zoo.recipes.captioning_recipe").captioning
    if name == "summarization":
        return importlib.import_module("keras_attn_zoo.recipes.summarization_recipe").summarization
    raise AttributeError(f"module 'keras_attn_zoo.recipes' has no attribute {name!r}")
