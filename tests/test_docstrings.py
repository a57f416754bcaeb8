"""Every docstring Example of the public layers, recipes and tokenizer runs and prints what it says."""

import doctest
import importlib

import pytest

MODULES = [
    "keras_attn_zoo.layers.bahdanau_attention",
    "keras_attn_zoo.layers.luong_attention",
    "keras_attn_zoo.layers.attention_decoder",
    "keras_attn_zoo.layers.tied_embedding",
    "keras_attn_zoo.recipes.translation_recipe",
    "keras_attn_zoo.tokenizer",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no docstring example"
    assert result.failed == 0
