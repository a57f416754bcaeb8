"""`EncoderDecoder`: what every model of the zoo shares, whatever its input (text or an image).

A model of the zoo is a functional Keras model whose decoder is an `AttentionDecoder` reading a
memory: a text encoder's states (`Seq2Seq`) or a CNN's feature grid (`Captioner`). Everything
after the memory is the same for every task, and lives here once:

- training defaults: `compile()` (masked cross-entropy, token accuracy, Adam with clipping) and
  `compute_loss` logging the decoder's extra losses (coverage, doubly stochastic attention);
- generation: `search_options` (checked options with the model's `search_defaults`), `generate`
  (greedy or beam search as one compiled loop, XLA optional) and `search` (the traceable search
  `keras_attn_zoo.export` also traces).

A subclass says what its input is with three methods:

    _search_memory(inputs, options)  -> memory, memory_mask, encoder_state, limits, copy_ids
    _search_input_spec()             -> (shape, dtype) of the input `generate` takes
    _pad_search_inputs(array)        -> the array padded for XLA, and how long its memory is

and what it does at the edges, the surface the CLI (and anything else that serves a model) calls
without asking which task it is:

    input_kind                                   "text" (`Seq2Seq`) or "image" (`Captioner`)
    predict_inputs(items, **options)             raw items in, `inference.Prediction`s out
    plot_prediction(prediction, item, path)      the attention figure of one prediction
"""

import keras
import numpy as np
from keras import ops

from keras_attn_zoo.decoding import beam_search, tile_rows

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SEARCH_DEFAULTS = {
    "beam_size": 1,
    "alpha": 0.0,
    "beta": 0.0,
    "min_length": 0,
    "no_repeat_ngram_size": 0,
    "max_length": None,
    "max_length_ratio": 2.0,
    "max_length_offset": 10,
    "ban_unk": False,
    "stepwise_coverage": False,
}


class EncoderDecoder(keras.Model):
    """Base class of the zoo's models: training defaults and search; see the module docstring.

    Subclasses set, before `super().__init__(inputs, outputs)`: `target_embedding`,
    `output_projection` (None with tied embeddings), `decoder`, `copy_layer` (None without a copy
    switch) and the loss trackers; after it: `target_vocab_size`, `max_target_length` and
    `search_defaults` (through `_set_search_defaults`).
    """

    _search_input_label = ("inputs", "a batch")  # (name, layout) for error messages
    input_kind = None  # what `predict_inputs` reads: "text" (strings) or "image" (paths, PIL images, arrays)

    # -- The edges: raw items in, predictions and figures out -----------------------------------
    def predict_inputs(
        self, items, beam_size=None, batch_size=64, return_attention=False, return_details=False, progress=None,
        **search_options,
    ):
        """Raw items in (strings for text models, images for captioners), `Prediction`s out.

        Args:
            items: a list of the model's `input_kind`: strings, or image paths / PIL images /
                uint8 arrays.
            beam_size: 1 for greedy search; default the model's (`search_defaults`), else 1.
            batch_size: inputs per search call.
            return_attention: fill `Prediction.attention` (and what a figure of it needs).
            return_details: fill `Prediction.details` with the model's per-token extras, if it
                has any (a pointer-generator's p_gen); ignored by models without extras.
            progress: None, or a function called with the number of inputs done after each batch.
            **search_options: passed to `generate` (and `jit_compile`).

        Returns:
            a list of `keras_attn_zoo.inference.Prediction`, one per item, in order. An item that
            cannot be read (an image that does not decode) gets `error` set and the rest run.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_inputs.")

    def plot_prediction(self, prediction, item, path):
        """Draw `prediction`'s attention (from `predict_inputs(..., return_attention=True)`) to PNG `path`.

        `item` is the input it came from. Returns the `Path` written, or None when there is
        nothing to draw (an empty input, an image that did not load).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement plot_prediction.")

    # -- Training defaults ----------------------------------------------------------------------
    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """`keras.Model.compile` with defaults that fit the model (keras-hub's `Task.compile` style).

        Args:
            optimizer: "auto" is Adam (learning rate 1e-3, each gradient clipped to norm 1).
            loss: "auto" is the cross-entropy of the logits over the real target tokens:
                `SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)` (0 is padding).
            metrics: "auto" is token accuracy, the share of real target tokens whose logit is
                the largest (`SparseTopKCategoricalAccuracy(k=1)`: the same as argmax accuracy but
                for exact ties, which count as hits; `SparseCategoricalAccuracy` costs three more
                passes over the (batch, T, vocabulary) logits on TensorFlow for its handling of
                -0.0: 2-7% of a training step in `benchmarks/real_positions.py`); padded steps do
                not count (the logits carry the target mask, which Keras applies to losses and
                metrics).
            **kwargs: any other `keras.Model.compile` argument.

        On TensorFlow without XLA, training steps (fit; not evaluate or predict) then skip the
        padding where shapes may vary: the decoder runs each row over its real steps only
        (`AttentionDecoder.pack_rows`) and the logits are computed at the real positions only
        (`keras_attn_zoo.layers.real_positions`); zeros at padded positions, which the mask hides
        from every Keras loss and metric.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3, clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD_ID)
        if metrics == "auto":
            metrics = [keras.metrics.SparseTopKCategoricalAccuracy(k=1, name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        skip_padding = keras.backend.backend() == "tensorflow" and not self.jit_compile
        self.decoder.pack_rows = skip_padding
        self._logits_layer().real_positions_only = skip_padding

    def _loss_trackers(self, coverage_loss_weight, doubly_stochastic_loss_weight):
        self.coverage_loss_tracker = keras.metrics.Mean(name="coverage_loss") if coverage_loss_weight else None
        self.doubly_stochastic_loss_tracker = (
            keras.metrics.Mean(name="doubly_stochastic_loss") if doubly_stochastic_loss_weight else None
        )

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The only losses layers add are the decoder's, in this order: the coverage loss, then the
        # doubly stochastic attention loss, each there when its weight is set. Log each on its own;
        # in evaluation (no loss added) the values the decoder computed, so that `val_coverage_loss`
        # is the validation data's, not an empty mean's 0.
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        trackers = [t for t in (self.coverage_loss_tracker, self.doubly_stochastic_loss_tracker) if t is not None]
        losses = self.losses if training else list(self.decoder.untrained_losses)
        if trackers and len(losses) == len(trackers):
            for tracker, loss in zip(trackers, losses):
                tracker.update_state(ops.sum(loss))
        return total

    # -- Output layer ---------------------------------------------------------------------------
    def _logits_layer(self):
        """The layer that makes the logits: the output projection, or the tied target embedding."""
        return self.target_embedding if self.output_projection is None else self.output_projection

    def _logits(self, decoded):
        if self.output_projection is None:
            return self.target_embedding(decoded, reverse=True)
        return self.output_projection(decoded)

    def _step_logits_fn(self):
        """`output (N, D) -> logits (N, V)` for one decoder step, prepared once per search.

        Tied embeddings are transposed here, outside the decoding loop: a product with the
        transposed (V, D) matrix (what `TiedEmbedding(reverse=True)` computes) runs about twice
        slower per step on CPU than one with a (D, V) copy (measured with Eigen and oneDNN).
        """
        if self.output_projection is not None:
            return lambda output: ops.cast(self.output_projection(output), "float32")
        kernel = ops.transpose(self.target_embedding.embeddings)
        bias = self.target_embedding.output_bias

        def logits(output):
            return ops.cast(ops.matmul(output, ops.cast(kernel, output.dtype)) + ops.cast(bias, output.dtype), "float32")

        return logits

    # -- Generation -----------------------------------------------------------------------------
    def _set_search_defaults(self, search_defaults):
        self.search_defaults = None
        if search_defaults:
            self.search_options(**search_defaults)  # fail at construction on a bad default
            self.search_defaults = dict(search_defaults)
        self._search_functions = {}

    def search_options(self, beam_size=None, **options):
        """Checked search options with their defaults, as plain Python values.

        Defaults come, in this order, from the options given, the model's `search_defaults`
        (a preset's `[evaluation]` settings: what its model card measured) and `SEARCH_DEFAULTS`.
        Options: beam_size (1: greedy), alpha (length penalty), beta (coverage penalty),
        min_length, no_repeat_ngram_size, max_length (default `max_target_length`),
        max_length_ratio / max_length_offset (each output has at most
        min(max_length, ratio * source length + offset) tokens, eos included; a model whose
        input has no length, such as an image, uses max_length alone), ban_unk (never generate
        the unknown piece) and stepwise_coverage (the coverage penalty also ranks live
        hypotheses while pruning; see `keras_attn_zoo.decoding.beam_search`).
        """
        if beam_size is not None:
            options["beam_size"] = beam_size
        options = {key: value for key, value in options.items() if value is not None}
        unknown = sorted(set(options) - set(SEARCH_DEFAULTS))
        if unknown:
            raise ValueError(
                f"Received: search option(s) {', '.join(map(repr, unknown))}; expected any of "
                f"{', '.join(map(repr, SEARCH_DEFAULTS))}."
            )
        merged = {**SEARCH_DEFAULTS, **(getattr(self, "search_defaults", None) or {}), **options}
        beam_size = merged["beam_size"]
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"Received: beam_size={beam_size!r}; expected an integer >= 1.")
        max_length = int(merged["max_length"] or self.max_target_length)
        if max_length < 1:
            raise ValueError(f"Received: max_length={max_length}; expected an integer >= 1.")
        return {
            "beam_size": beam_size,
            "alpha": float(merged["alpha"]),
            "beta": float(merged["beta"]),
            "min_length": int(merged["min_length"]),
            "no_repeat_ngram_size": int(merged["no_repeat_ngram_size"]),
            "max_length": max_length,
            "max_length_ratio": float(merged["max_length_ratio"]),
            "max_length_offset": int(merged["max_length_offset"]),
            "ban_unk": bool(merged["ban_unk"]),
            "stepwise_coverage": bool(merged["stepwise_coverage"]),
        }

    def generate(self, inputs, beam_size=None, jit_compile="auto", **options):
        """Greedy (beam_size=1) or beam search from a batch of the model's inputs.

        `inputs` is what the subclass's encoder reads: a padded (batch, Ts) int array of source
        ids for `Seq2Seq`, a (batch, positions, channels) array of image features for `Captioner`.
        See `search_options` for the options and their defaults (the model's `search_defaults`
        first). The search is compiled once per set of options.
        `jit_compile=True` compiles it with XLA, which fuses the many small operations of a
        decoding step: greedy search then ran about twice as fast per batch on a 2-core CPU
        (`benchmarks/decoding_speed.py`), but XLA compiles once per input shape (about a second
        each there), which only long runs of batches win back. "auto" (the default) follows Keras:
        XLA on JAX and where TensorFlow sees an accelerator, a plain `tf.function` on CPU-only
        TensorFlow (`jit_compile=False`). Under XLA the inputs are padded to a batch of a power
        of two (and text to a source length of a multiple of 16), so few shapes compile (padding
        is masked: it changes no output), and the outputs are cut back.
        Returns a dict of numpy arrays (see `keras_attn_zoo.decoding.beam_search`); "weights" is
        (batch, steps, memory positions).
        """
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"Received: jit_compile={jit_compile!r}; expected True, False or 'auto'.")
        options = self.search_options(beam_size, **options)
        backend = keras.backend.backend()
        if jit_compile == "auto":
            jit_compile = backend == "jax" or (backend == "tensorflow" and _has_accelerator())
        jit_compile = jit_compile and backend in ("tensorflow", "jax")
        key = (tuple(sorted(options.items())), jit_compile)
        compiled = self._search_functions.get(key)
        if compiled is None:
            compiled = self._compile_search(options, jit_compile)
            self._search_functions[key] = compiled
        shape, dtype = self._search_input_spec()
        inputs = np.asarray(ops.convert_to_numpy(inputs), dtype=dtype)
        if inputs.ndim != len(shape):
            name, layout = self._search_input_label
            raise ValueError(f"Received: {name} of shape {inputs.shape}; expected {layout}.")
        batch = inputs.shape[0]
        length = inputs.shape[1]
        if jit_compile or backend == "jax":
            padded_batch = 1 << (batch - 1).bit_length() if batch else 0
            inputs = np.pad(inputs, [(0, padded_batch - batch)] + [(0, 0)] * (inputs.ndim - 1))
            inputs = self._pad_search_inputs(inputs)
        outputs = {key: ops.convert_to_numpy(value) for key, value in compiled(ops.convert_to_tensor(inputs)).items()}
        outputs = {key: value[:batch] for key, value in outputs.items()}
        outputs["weights"] = outputs["weights"][:, :, :length]
        return outputs

    def _pad_search_inputs(self, inputs):
        """Inputs padded beyond the batch for XLA (few compiled shapes); as they are by default."""
        return inputs

    def search(self, inputs, options):
        """The traceable search on a batch of inputs with checked `options` (see `search_options`).

        `generate` compiles it; `keras_attn_zoo.export` traces it into a SavedModel.
        """
        beam_size = options["beam_size"]
        memory, memory_mask, encoder_state, limits, copy_ids = self._search_memory(inputs, options)
        bundle = self.decoder.precompute_memory(memory, memory_mask)
        state = self.decoder.get_initial_state(bundle, encoder_state)
        bundle = tile_rows(bundle, beam_size)
        state = tile_rows(state, beam_size)
        output_logits = self._step_logits_fn()
        if self.copy_layer is not None:
            copy_ids = tile_rows(copy_ids, beam_size)

        def step_fn(token_ids, state):
            # A plain lookup: no Keras mask to carry into the recurrent cells.
            embedded = ops.take(self.target_embedding.embeddings, token_ids, axis=0)
            if self.copy_layer is None:
                output, state, weights = self.decoder.step(embedded, state, bundle)
                return output_logits(output), state, weights
            output, state, weights, features = self.decoder.step(embedded, state, bundle, return_features=True)
            log_probs = self.copy_layer(
                output_logits(output), weights, copy_ids, features["context"], features["state"], embedded
            )
            return log_probs, state, weights

        return beam_search(
            step_fn,
            state,
            memory_mask,
            limits,
            max_length=options["max_length"],
            vocab_size=self.target_vocab_size,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            beam_size=beam_size,
            alpha=options["alpha"],
            beta=options["beta"],
            min_length=options["min_length"],
            no_repeat_ngram_size=options["no_repeat_ngram_size"],
            banned_ids=(PAD_ID, UNK_ID) if options["ban_unk"] else (PAD_ID,),
            stepwise_coverage=options["stepwise_coverage"],
        )

    def _compile_search(self, options, jit_compile=False):
        def search(inputs):
            return self.search(inputs, options)

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            shape, dtype = self._search_input_spec()
            return tf.function(
                search,
                input_signature=[tf.TensorSpec(shape, dtype)],
                reduce_retracing=True,
                jit_compile=jit_compile,
            )
        if backend == "jax":
            import jax

            return jax.jit(search)
        return search


def _has_accelerator():
    import tensorflow as tf

    return any(device.device_type != "CPU" for device in tf.config.list_physical_devices())
