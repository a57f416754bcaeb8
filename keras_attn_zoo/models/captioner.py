"""`Captioner`: Show, Attend and Tell (Xu et al. 2015): a CNN's feature grid as the decoder's memory."""

import os

import keras
import numpy as np
from keras import ops

from keras_attn_zoo.layers.attention_decoder import AttentionDecoder
from keras_attn_zoo.layers.real_positions import OutputProjection
from keras_attn_zoo.layers.tied_embedding import TiedEmbedding
from keras_attn_zoo.models.encoder_decoder import EncoderDecoder

ENCODER_WEIGHTS_FILE = "encoder.weights.h5"  # in a checkpoint's assets, for encoders not rebuilt from a package
# Attributes Keras' save and load must not visit (they walk `dir(model)`): the frozen CNN is rebuilt
# at load (from its weights package, or the assets), so model.weights.h5 holds the decoder alone.
_NOT_SAVED = frozenset({"image_encoder", "_image_encoder"})


def _trainable_encoder(encoder, weights, image_size, feature_layer):
    """The CNN to fine-tune: trainable, but its BatchNorm layers frozen (their statistics kept)."""
    from keras_attn_zoo.encoders import build_image_encoder

    cnn = build_image_encoder(encoder, weights, image_size, feature_layer)
    for layer in cnn._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return cnn


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class Captioner(EncoderDecoder):
    """An image captioner: frozen CNN feature grid -> projection -> `AttentionDecoder` -> words.

    The functional model takes `{"features": (batch, positions, channels), "target_ids": (batch,
    T)}`: the CNN's last feature grid (H x W annotation vectors of C channels, flattened to H·W
    positions) and the caption ids, and gives (batch, T, vocab_size) logits. The CNN itself
    (`image_encoder`, built from `encoder`, `encoder_weights` and `image_size`) is frozen and
    outside the trained graph: `attn-zoo train` runs it once per image and caches the grids, so
    an epoch costs only the decoder; `generate` takes feature grids, `encode_images` makes them
    and `predict_images` goes from image files (or PIL images, or arrays) to captions.

    The decoder is Xu et al.'s: an LSTM whose input is the previous word and the context
    (Bahdanau placement), the context gated by β_t = σ(f_β(h_{t-1})) (`gate_context`), the
    initial state from the mean annotation (`bridge="mean_memory"`) and the doubly stochastic
    attention loss λ Σ_i (τ − Σ_t α_ti)² (`doubly_stochastic_loss_weight` λ,
    `doubly_stochastic_target` τ), logged as `doubly_stochastic_loss`.

    Args:
        vocab_size: caption vocabulary size (ids 0..3 are pad, bos, eos, unk).
        encoder: "efficientnet_lite0" or a `keras.applications` backbone name.
        encoder_weights: "imagenet" (EfficientNet-Lite0: from the installed weights package,
            rebuilt at load), None (random) or a Keras weights file; weights that do not come
            from a package are saved in the checkpoint's assets.
        feature_layer: None for the encoder's last feature map, or the layer whose output is the
            grid (see `keras_attn_zoo.encoders.build_image_encoder`).
        image_size: images are fitted (aspect ratio kept, white padding) into this square.
        feature_channels: C, the channels of the encoder's grid (1280 for EfficientNet-Lite0).
        feature_grid: the side of the encoder's square grid at `image_size` (7 for
            EfficientNet-Lite0 at 224): attention over H·W positions is drawn as this square.
        attention: "bahdanau" (Xu et al.'s soft attention) or a Luong score ("dot", "general",
            "concat", "cosine").
        placement: "bahdanau" (Xu et al.: the context of step t is computed from h_{t-1} and
            feeds the cell and the readout) or "luong" (computed from h_t after the cell and
            read out with it; see `AttentionDecoder`).
        input_feeding: with "luong" placement, feed the previous attentional vector into the
            cell. Without it the cell only sees the words, so what the image holds reaches a
            word through that word's own attention.
        cell: "lstm" (Xu et al.) or "gru".
        train_encoder: train the CNN with the decoder (fine-tuning): the functional model then
            takes `{"images": uint8 (batch, size, size, 3), "target_ids"}`, the CNN is a tracked
            layer whose weights are saved with the checkpoint, and its BatchNorm layers keep
            their statistics (frozen, as usual when fine-tuning with small batches). Default:
            frozen, outside the trained graph, grids cached once per image.
        position_embedding: add a learned vector per grid position to the projected memory, so
            that a context says where it was read as well as what is there. A CNN's features
            are nearly translation-equivariant: without it, a caption's "at the top left" can
            only come from border effects in the features. On the Fashion-MNIST scenes it made
            the attention a lookup of positions and localised worse (README, "Trained captioners").
        embedding_dim, units: word embedding and decoder sizes; the projected memory has `units`.
        dropout: on the projected memory and inside the decoder.
        tie_embeddings: the word embedding is also the output projection.
        gate_context, bridge, doubly_stochastic_loss_weight, doubly_stochastic_target,
        attention_units, normalize, scale, scale_init, seed: see `AttentionDecoder`.
        max_target_length: the longest caption `generate` produces.
        search_defaults: the default search options (see `search_options`).
    """

    _search_input_label = ("features", "(batch, positions, channels)")

    def __init__(
        self,
        vocab_size,
        encoder="efficientnet_lite0",
        encoder_weights="imagenet",
        feature_layer=None,
        image_size=224,
        feature_channels=1280,
        feature_grid=7,
        attention="bahdanau",
        placement="bahdanau",
        input_feeding=True,
        cell="lstm",
        train_encoder=False,
        position_embedding=False,
        embedding_dim=256,
        units=512,
        dropout=0.3,
        tie_embeddings=True,
        gate_context=True,
        bridge="mean_memory",
        doubly_stochastic_loss_weight=1.0,
        doubly_stochastic_target=1.0,
        attention_units=None,
        normalize=False,
        scale=None,
        scale_init=None,
        seed=None,
        max_target_length=32,
        search_defaults=None,
        **kwargs,
    ):
        if attention is None:
            raise ValueError("Received: attention=None; a captioner attends over the image (Show, Attend and Tell).")
        # === Layers ===
        embedding_class = TiedEmbedding if tie_embeddings else keras.layers.Embedding
        self.target_embedding = embedding_class(vocab_size, embedding_dim, mask_zero=True, name="target_embedding")
        self.feature_projection = keras.layers.Dense(units, name="feature_projection")
        self.memory_dropout = keras.layers.Dropout(dropout, name="memory_dropout")
        self.position_embedding_layer = (
            keras.layers.Embedding(feature_grid * feature_grid, units, name="position_embedding")
            if position_embedding
            else None
        )
        self.decoder = AttentionDecoder(
            units,
            attention=attention,
            placement=placement,
            input_feeding=input_feeding,
            cell=cell,
            dropout=dropout,
            output_units=embedding_dim if tie_embeddings else units,
            bridge=bridge,
            attention_units=attention_units,
            normalize=normalize,
            scale=scale,
            scale_init=scale_init,
            seed=seed,
            gate_context=gate_context,
            doubly_stochastic_loss_weight=doubly_stochastic_loss_weight,
            doubly_stochastic_target=doubly_stochastic_target,
            name="decoder",
        )
        self.output_projection = None if tie_embeddings else OutputProjection(vocab_size, name="output_projection")
        self.copy_layer = None
        self.cnn = _trainable_encoder(encoder, encoder_weights, image_size, feature_layer) if train_encoder else None
        self._loss_trackers(0.0, doubly_stochastic_loss_weight)

        # === Functional model ===
        target_ids = keras.Input((None,), dtype="int32", name="target_ids")
        if train_encoder:
            images = keras.Input((image_size, image_size, 3), dtype="uint8", name="images")
            grid = self.cnn(images)
            features = keras.layers.Reshape((feature_grid * feature_grid, feature_channels), name="flatten_grid")(grid)
            inputs = {"images": images, "target_ids": target_ids}
        else:
            features = keras.Input((None, feature_channels), dtype="float32", name="features")
            inputs = {"features": features, "target_ids": target_ids}
        memory, memory_mask = self._encode(features)
        embedded = self.target_embedding(target_ids)
        decoded = self.decoder(embedded, memory, memory_mask=memory_mask)
        logits = self._logits(decoded)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.vocab_size = self.target_vocab_size = vocab_size
        self.encoder = encoder
        self.encoder_weights = encoder_weights
        self.feature_layer = feature_layer
        self.image_size = image_size
        self.feature_channels = feature_channels
        self.feature_grid = feature_grid
        self.attention = attention
        self.placement = placement
        self.input_feeding = input_feeding
        self.cell = cell
        self.train_encoder = train_encoder
        self.position_embedding = position_embedding
        self.embedding_dim = embedding_dim
        self.units = units
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings
        self.gate_context = gate_context
        self.bridge = bridge
        self.doubly_stochastic_loss_weight = doubly_stochastic_loss_weight
        self.doubly_stochastic_target = doubly_stochastic_target
        self.attention_units = attention_units
        self.normalize = normalize
        self.scale = scale
        self.scale_init = scale_init
        self.seed = seed
        self.max_target_length = max_target_length
        self._set_search_defaults(search_defaults)
        self.target_tokenizer = None
        self.source_tokenizer = None  # text models' input tokenizer: a captioner reads images
        # The CNN is not a tracked layer: its weights are not the checkpoint's (see `image_encoder`).
        object.__setattr__(self, "_image_encoder", None)
        object.__setattr__(self, "_encoder_weights_file", None)

    # -- The memory -----------------------------------------------------------------------------
    def _encode(self, features, training=None):
        memory = self.feature_projection(features)
        if self.position_embedding_layer is not None:
            positions = ops.arange(self.position_embedding_layer.input_dim, dtype="int32")
            memory = memory + self.position_embedding_layer(positions)[None]
        memory = self.memory_dropout(memory, training=training)
        memory_mask = ops.ones_like(features[:, :, 0], dtype="bool")  # every grid position is real
        return memory, memory_mask

    def _search_input_spec(self):
        return (None, None, self.feature_channels), "float32"

    def _search_memory(self, features, options):
        memory, memory_mask = self._encode(features, training=False)
        limits = ops.full((ops.shape(features)[0],), options["max_length"], dtype="int32")
        return memory, memory_mask, None, limits, None

    # -- Images ---------------------------------------------------------------------------------
    def __dir__(self):
        # Keras' `save_weights`/`load_weights` walk `dir(model)` and would save the frozen CNN
        # (3.4 million weights of EfficientNet-Lite0) with the decoder, and build it on load.
        return [name for name in super().__dir__() if name not in _NOT_SAVED]

    @property
    def image_encoder(self):
        """The CNN (uint8 images (batch, size, size, 3) -> grid (batch, H, W, C)), built on first use."""
        if self.cnn is not None:  # trained with the decoder: part of the model
            return self.cnn
        if self._image_encoder is None:
            from keras_attn_zoo.encoders import build_image_encoder

            weights = self._encoder_weights_file or self.encoder_weights
            encoder = build_image_encoder(self.encoder, weights, self.image_size, self.feature_layer)
            encoder.trainable = False
            object.__setattr__(self, "_image_encoder", encoder)
        return self._image_encoder

    def encode_images(self, pixels, batch_size=32):
        """Feature grids of uint8 images (N, size, size, 3): float32 (N, H·W, C) numpy."""
        pixels = np.asarray(pixels)
        outputs = []
        for start in range(0, len(pixels), batch_size):
            grid = self.image_encoder(pixels[start : start + batch_size], training=False)
            grid = ops.convert_to_numpy(grid)
            outputs.append(grid.reshape(grid.shape[0], -1, grid.shape[-1]))
        if not outputs:
            return np.zeros((0, self.feature_grid**2, self.feature_channels), np.float32)
        return np.concatenate(outputs).astype(np.float32)

    def attach_tokenizer(self, tokenizer):
        """Attach the caption `SubwordTokenizer` (saved with the model as an asset)."""
        if tokenizer.vocab_size != self.vocab_size:
            raise ValueError(
                f"The tokenizer has {tokenizer.vocab_size} pieces but the model expects vocab_size={self.vocab_size}."
            )
        self.target_tokenizer = tokenizer
        return self

    def predict_images(self, images, beam_size=None, batch_size=32, return_attention=False, **search_options):
        """Images in (paths, PIL images or uint8 arrays), `Prediction`s out; see `inference.predict_images`."""
        from keras_attn_zoo.inference import predict_images

        return predict_images(self, images, beam_size, batch_size, return_attention, **search_options)

    input_kind = "image"

    def predict_inputs(
        self, items, beam_size=None, batch_size=64, return_attention=False, return_details=False, progress=None,
        **search_options,
    ):
        """Images in, `Prediction`s out (`inference.predict_images`); see `EncoderDecoder.predict_inputs`.

        A captioner has no per-token extras: `return_details` changes nothing.
        """
        from keras_attn_zoo.inference import predict_images

        return predict_images(self, items, beam_size, batch_size, return_attention, progress=progress, **search_options)

    def plot_prediction(self, prediction, item, path):
        """Show, Attend and Tell's figure (`plots.plot_image_attention`): the image, then each word's attention.

        `item` is the image the prediction came from (a path, PIL image or array), decoded again
        to draw the original picture under the attention maps.
        """
        if prediction.attention is None or not prediction.attention.size or prediction.image_box is None:
            return None
        from keras_attn_zoo.images import decode_image
        from keras_attn_zoo.plots import plot_image_attention

        return plot_image_attention(
            decode_image(item), prediction.image_box, prediction.attention, prediction.tokens, path,
            grid=self.feature_grid,
        )

    def save_assets(self, dir_path):
        if self.target_tokenizer is not None:
            self.target_tokenizer.save(os.path.join(dir_path, "target.spm.model"))
        if self.cnn is None and (self.encoder_weights != "imagenet" or self.encoder != "efficientnet_lite0"):
            # Random or user-given weights: keep them with the model, so it loads as it was saved.
            self.image_encoder.save_weights(os.path.join(dir_path, ENCODER_WEIGHTS_FILE))

    def load_assets(self, dir_path):
        from keras_attn_zoo.tokenizer import SubwordTokenizer

        path = os.path.join(dir_path, "target.spm.model")
        if os.path.exists(path):
            self.attach_tokenizer(SubwordTokenizer.load(path))
        weights = os.path.join(dir_path, ENCODER_WEIGHTS_FILE)
        if os.path.exists(weights):
            object.__setattr__(self, "_encoder_weights_file", weights)
            object.__setattr__(self, "_image_encoder", None)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocab_size": self.vocab_size,
            "encoder": self.encoder,
            "encoder_weights": self.encoder_weights,
            "feature_layer": self.feature_layer,
            "image_size": self.image_size,
            "feature_channels": self.feature_channels,
            "feature_grid": self.feature_grid,
            "attention": self.attention,
            "placement": self.placement,
            "input_feeding": self.input_feeding,
            "cell": self.cell,
            "train_encoder": self.train_encoder,
            "position_embedding": self.position_embedding,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "gate_context": self.gate_context,
            "bridge": self.bridge,
            "doubly_stochastic_loss_weight": self.doubly_stochastic_loss_weight,
            "doubly_stochastic_target": self.doubly_stochastic_target,
            "attention_units": self.attention_units,
            "normalize": self.normalize,
            "scale": self.scale,
            "scale_init": self.scale_init,
            "seed": self.seed,
            "max_target_length": self.max_target_length,
            "search_defaults": self.search_defaults,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
