"""Recipes: functions that compose the zoo's layers into ready-to-train models, one per task.

`RECIPES` is the one registry of recipe names; `get_recipe(name)` fails with the closest names.
"""

from keras_attn_zoo.recipes.registry import RECIPES, get_recipe
from keras_attn_zoo.recipes.translation import ATTENTION_OPTIONS, translation

__all__ = ["ATTENTION_OPTIONS", "RECIPES", "get_recipe", "translation"]
