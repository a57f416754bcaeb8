"""The registry of recipe names. Plain data and no TensorFlow import: the CLI reads it cheaply."""

from keras_attn_zoo.errors import UnknownNameError, closest  # noqa: F401 (closest: public here too)

# name -> (task, "module:function") of the builder; imported only when used.
RECIPES = {
    "translation": ("translation", "keras_attn_zoo.recipes.translation_recipe:translation"),
    "summarization": ("summarization", "keras_attn_zoo.recipes.summarization_recipe:summarization"),
    "captioning": ("captioning", "keras_attn_zoo.recipes.captioning_recipe:captioning"),
}

# name -> the options a recipe file's [recipe] table may set (besides `name`): the builder's
# keyword arguments, tokenizers and vocabulary sizes excepted (those come from [tokenizer]).
# Plain data, so a recipe file is checked without importing Keras; tests/test_training.py checks
# it against the builder's and the model's signatures.
RECIPE_OPTIONS = {
    "translation": (
        "attention",
        "cell",
        "embedding_dim",
        "units",
        "encoder_layers",
        "decoder_layers",
        "bidirectional",
        "dropout",
        "tie_embeddings",
        "bridge",
        "input_feeding",
        "coverage",
        "coverage_loss_weight",
        "gate_context",
        "doubly_stochastic_loss_weight",
        "doubly_stochastic_target",
        "attention_units",
        "normalize",
        "scale",
        "scale_init",
        "seed",
        "max_source_length",
        "max_target_length",
    ),
}
# Summarization adds the options that need one shared vocabulary.
RECIPE_OPTIONS["summarization"] = RECIPE_OPTIONS["translation"] + ("copy", "share_embeddings")


def get_recipe(name):
    """The builder function of a recipe name."""
    if name not in RECIPES:
        raise UnknownNameError(f"Unknown recipe {name!r}." + closest(name, RECIPES))
    import importlib

    module, function = RECIPES[name][1].split(":")
    return getattr(importlib.import_module(module), function)

# Captioning: the image side (encoder, its weights and input size) and Xu et al.'s decoder.
RECIPE_OPTIONS["captioning"] = (
    "encoder",
    "encoder_weights",
    "feature_layer",
    "image_size",
    "attention",
    "placement",
    "input_feeding",
    "cell",
    "train_encoder",
    "position_embedding",
    "embedding_dim",
    "units",
    "dropout",
    "tie_embeddings",
    "gate_context",
    "bridge",
    "doubly_stochastic_loss_weight",
    "doubly_stochastic_target",
    "attention_units",
    "normalize",
    "scale",
    "scale_init",
    "seed",
    "max_target_length",
)
