"""`Seq2Seq`: the functional RNN encoder-decoder every text recipe builds."""

import keras
import numpy as np
from keras import ops

from keras_attn_zoo.layers.attention_decoder import AttentionDecoder
from keras_attn_zoo.layers.gru import GRU
from keras_attn_zoo.layers.pointer_generator import PointerGenerator
from keras_attn_zoo.layers.real_positions import OutputProjection
from keras_attn_zoo.layers.tied_embedding import TiedEmbedding
from keras_attn_zoo.models.encoder_decoder import (  # noqa: F401 (the ids and defaults: public here too)
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SEARCH_DEFAULTS,
    UNK_ID,
    EncoderDecoder,
)

SOURCE_LENGTH_BUCKET = 16  # XLA-compiled searches see source lengths rounded up to a multiple of this


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class Seq2Seq(EncoderDecoder):
    """A recurrent encoder-decoder with attention, as a functional Keras model.

    source ids -> embedding -> (bidirectional) GRU/LSTM encoder -> memory -> `AttentionDecoder`
    (teacher-forced over the target ids) -> logits over the target vocabulary. Inputs are a dict
    `{"source_ids": (batch, Ts), "target_ids": (batch, Tt)}` of int ids with 0 as padding; the
    output is (batch, Tt, target_vocab_size) logits. Train it with `model.fit` on batches whose
    labels are the target ids shifted left (see `keras_attn_zoo.data.make_dataset`).

    `generate` runs greedy or beam search as one compiled loop. With tokenizers attached
    (`attach_tokenizers`), `predict_texts` goes from strings to strings, and the tokenizers are
    saved with the model as assets.

    Args:
        source_vocab_size, target_vocab_size: vocabulary sizes (ids 0..3 are pad, bos, eos, unk).
        attention: see `AttentionDecoder`; None gives the classic single-context-vector model.
        placement, input_feeding, coverage, bridge: see `AttentionDecoder`.
        cell: "gru" or "lstm".
        embedding_dim: size of both embeddings.
        units: decoder size; the encoder's output (memory) has this size too (each direction
            of a bidirectional encoder has units // 2).
        encoder_layers, decoder_layers: stacked recurrent layers.
        bidirectional: bidirectional encoder.
        dropout: dropout rate on embeddings, between layers and on decoder outputs.
        tie_embeddings: the target embedding is also the output projection.
        share_embeddings: one embedding for source and target (one shared vocabulary: the
            vocabulary sizes must agree); with `tie_embeddings` it is also the output
            projection (the three-way tying of summarization models).
        copy: add a pointer-generator copy switch (`PointerGenerator`, See et al. 2017): the
            output is log P of the mixture of generating and copying a source token, which
            needs one shared vocabulary. The model's output is then log-probabilities, which
            the same loss and search take as logits.
        coverage_loss_weight: λ of See et al.'s coverage loss λ Σ_i min(a_i^t, c_i^t), added to
            the training loss and logged as `coverage_loss` (see `AttentionDecoder`).
        gate_context: gate the context by β_t = σ(w_β · q_t + b_β) (Xu et al. 2015; see
            `AttentionDecoder`).
        doubly_stochastic_loss_weight, doubly_stochastic_target: λ and τ of Xu et al.'s doubly
            stochastic attention loss λ Σ_i (τ − Σ_t α_ti)², added to the training loss and
            logged as `doubly_stochastic_loss` (see `AttentionDecoder`). `bridge="mean_memory"`
            starts the decoder from the mean of the memory, as Xu et al. do.
        max_source_length: longer inputs are truncated (with a warning) by `predict_texts`.
        max_target_length: the longest output `generate` produces.
    """

    def __init__(
        self,
        source_vocab_size,
        target_vocab_size,
        attention="bahdanau",
        placement=None,
        cell="gru",
        embedding_dim=256,
        units=256,
        encoder_layers=1,
        decoder_layers=1,
        bidirectional=True,
        dropout=0.2,
        tie_embeddings=True,
        bridge="dense",
        input_feeding=True,
        coverage=False,
        attention_units=None,
        normalize=False,
        scale=None,
        scale_init=None,
        seed=None,
        share_embeddings=False,
        copy=False,
        coverage_loss_weight=0.0,
        gate_context=False,
        doubly_stochastic_loss_weight=0.0,
        doubly_stochastic_target=1.0,
        max_source_length=128,
        max_target_length=160,
        search_defaults=None,
        **kwargs,
    ):
        if bidirectional and units % 2:
            raise ValueError(f"Received: units={units} with bidirectional=True; expected an even number.")
        if (share_embeddings or copy) and source_vocab_size != target_vocab_size:
            raise ValueError(
                f"Received: source_vocab_size={source_vocab_size}, target_vocab_size={target_vocab_size} with "
                f"{'copy' if copy else 'share_embeddings'}=True; expected one shared vocabulary (equal sizes)."
            )
        if copy and attention is None:
            raise ValueError("Received: copy=True with attention=None; copying reads the attention weights.")
        # === Layers ===
        embedding_class = TiedEmbedding if tie_embeddings else keras.layers.Embedding
        self.target_embedding = embedding_class(target_vocab_size, embedding_dim, mask_zero=True, name="target_embedding")
        if share_embeddings:
            self.source_embedding = self.target_embedding
        else:
            self.source_embedding = keras.layers.Embedding(
                source_vocab_size, embedding_dim, mask_zero=True, name="source_embedding"
            )
        rnn_class = GRU if cell == "gru" else keras.layers.LSTM
        encoder_units = units // 2 if bidirectional else units
        self.encoder_rnns = []
        for i in range(encoder_layers):
            rnn = rnn_class(encoder_units, return_sequences=True, return_state=True, name=f"encoder_{cell}_{i}")
            if bidirectional:
                rnn = keras.layers.Bidirectional(rnn, name=f"encoder_bidirectional_{i}")
            self.encoder_rnns.append(rnn)
        self.embedding_dropout = keras.layers.Dropout(dropout, name="embedding_dropout")
        self.encoder_dropout = keras.layers.Dropout(dropout, name="encoder_dropout")
        self.decoder = AttentionDecoder(
            units,
            attention=attention,
            placement=placement,
            cell=cell,
            num_layers=decoder_layers,
            dropout=dropout,
            input_feeding=input_feeding,
            output_units=embedding_dim if tie_embeddings else units,
            bridge=bridge,
            coverage=coverage,
            attention_units=attention_units,
            normalize=normalize,
            scale=scale,
            scale_init=scale_init,
            seed=seed,
            coverage_loss_weight=coverage_loss_weight,
            gate_context=gate_context,
            doubly_stochastic_loss_weight=doubly_stochastic_loss_weight,
            doubly_stochastic_target=doubly_stochastic_target,
            name="decoder",
        )
        self.output_projection = None if tie_embeddings else OutputProjection(target_vocab_size, name="output_projection")
        self.copy_layer = PointerGenerator(target_vocab_size, name="pointer_generator") if copy else None
        self._loss_trackers(coverage_loss_weight, doubly_stochastic_loss_weight)

        # === Functional model ===
        source_ids = keras.Input((None,), dtype="int32", name="source_ids")
        target_ids = keras.Input((None,), dtype="int32", name="target_ids")
        memory, source_mask, encoder_state = self._encode(source_ids)
        embedded = self.target_embedding(target_ids)
        if copy:
            logits, _ = self._copy_forward(source_ids, embedded, memory, source_mask, encoder_state)
        else:
            decoded = self.decoder(embedded, memory, memory_mask=source_mask, initial_state=encoder_state)
            logits = self._logits(decoded)
        super().__init__(inputs={"source_ids": source_ids, "target_ids": target_ids}, outputs=logits, **kwargs)

        # === Config ===
        self.source_vocab_size = source_vocab_size
        self.target_vocab_size = target_vocab_size
        self.attention = attention
        self.placement = placement
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.units = units
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.tie_embeddings = tie_embeddings
        self.bridge = bridge
        self.input_feeding = input_feeding
        self.coverage = coverage
        self.attention_units = attention_units
        self.normalize = normalize
        self.scale = scale
        self.scale_init = scale_init
        self.seed = seed
        self.share_embeddings = share_embeddings
        self.copy = copy
        self.coverage_loss_weight = coverage_loss_weight
        self.gate_context = gate_context
        self.doubly_stochastic_loss_weight = doubly_stochastic_loss_weight
        self.doubly_stochastic_target = doubly_stochastic_target
        self.max_source_length = max_source_length
        self.max_target_length = max_target_length
        self._set_search_defaults(search_defaults)
        self.source_tokenizer = None
        self.target_tokenizer = None

    # -- Pieces shared by the training graph and generation --------------------------------------
    def _encode(self, source_ids, training=None):
        source_mask = ops.not_equal(source_ids, PAD_ID)
        x = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        states = None
        for i, rnn in enumerate(self.encoder_rnns):
            if i > 0:
                x = self.encoder_dropout(x, training=training)
            outputs = rnn(x, mask=source_mask, training=training)
            x, states = outputs[0], list(outputs[1:])
        parts = 1 if self.decoder.cell == "gru" else 2
        if len(states) == 2 * parts:  # bidirectional: join each part of the two directions
            states = [ops.concatenate([states[j], states[parts + j]], -1) for j in range(parts)]
        encoder_state = states[0] if parts == 1 else states
        return x, source_mask, encoder_state

    def _copy_forward(self, source_ids, embedded, memory, source_mask, encoder_state, training=None, return_gate=False):
        """The teacher-forced pass of a copy model: `(copy layer output, alignments)`.

        One place for the training graph and `token_details` (the search steps it one token at a time).
        """
        decoded, alignments, features = self.decoder(
            embedded, memory, memory_mask=source_mask, initial_state=encoder_state, training=training,
            return_alignments=True, return_features=True,
        )
        output = self.copy_layer(
            self._logits(decoded), alignments, source_ids, features["context"], features["state"], embedded,
            return_gate=return_gate,
        )
        return output, alignments

    # -- What the search reads (see EncoderDecoder) -------------------------------------------
    _search_input_label = ("source_ids", "(batch, source length)")

    def _search_input_spec(self):
        return (None, None), "int32"

    def _pad_search_inputs(self, source_ids):
        length = source_ids.shape[1]
        padded_length = -(-max(length, 1) // SOURCE_LENGTH_BUCKET) * SOURCE_LENGTH_BUCKET
        return np.pad(source_ids, ((0, 0), (0, padded_length - length)))

    def _search_memory(self, source_ids, options):
        source_lengths = ops.sum(ops.cast(ops.not_equal(source_ids, PAD_ID), "float32"), axis=1)
        limits = ops.cast(ops.floor(source_lengths * options["max_length_ratio"]), "int32")
        limits = ops.clip(limits + options["max_length_offset"], 1, options["max_length"])
        memory, source_mask, encoder_state = self._encode(source_ids, training=False)
        return memory, source_mask, encoder_state, limits, source_ids

    def token_details(self, source_ids, output_ids):
        """The model's per-token extras for given outputs: for a pointer-generator, p_gen and the copy source.

        Runs the decoder teacher-forced over `output_ids` (batch, L) (bos is prepended; 0 pads)
        and returns `{"p_gen": (batch, L), "copied_from": (batch, L)}` as numpy arrays:
        p_gen of each output token, and the source position that gave the token the most copy
        probability (the highest attention weight among positions holding that id), -1 where the
        id is not in the source. An empty dict for a model without `copy` (nothing to add).
        """
        if self.copy_layer is None:
            return {}
        source_ids = np.asarray(ops.convert_to_numpy(source_ids), dtype="int32")
        output_ids = np.asarray(output_ids, dtype="int32")
        batch = output_ids.shape[0]
        target_ids = np.concatenate([np.full((batch, 1), BOS_ID, "int32"), output_ids[:, :-1]], 1)
        memory, source_mask, encoder_state = self._encode(ops.convert_to_tensor(source_ids), training=False)
        embedded = self.target_embedding(ops.convert_to_tensor(target_ids))
        (_, p_gen), alignments = self._copy_forward(
            source_ids, embedded, memory, source_mask, encoder_state, training=False, return_gate=True
        )
        alignments = ops.convert_to_numpy(alignments)
        holds = source_ids[:, None, :] == output_ids[:, :, None]  # (batch, L, Ts): position holds the token
        copied_from = np.where(holds.any(-1), np.where(holds, alignments, -1.0).argmax(-1), -1)
        return {"p_gen": ops.convert_to_numpy(p_gen), "copied_from": copied_from}

    # -- Text in, text out ----------------------------------------------------------------------
    def attach_tokenizers(self, source_tokenizer, target_tokenizer):
        """Attach the `SubwordTokenizer`s that turn text into ids and back; saved as assets."""
        for label, tokenizer, size in (
            ("source", source_tokenizer, self.source_vocab_size),
            ("target", target_tokenizer, self.target_vocab_size),
        ):
            if tokenizer.vocab_size != size:
                raise ValueError(
                    f"The {label} tokenizer has {tokenizer.vocab_size} pieces but the model expects "
                    f"{label}_vocab_size={size}."
                )
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        return self

    def predict_texts(self, texts, beam_size=None, batch_size=64, return_attention=False, **search_options):
        """Strings in, `keras_attn_zoo.inference.Prediction`s out; see `inference.predict_texts`."""
        from keras_attn_zoo.inference import predict_texts

        return predict_texts(self, texts, beam_size, batch_size, return_attention, **search_options)

    input_kind = "text"

    def predict_inputs(
        self, items, beam_size=None, batch_size=64, return_attention=False, return_details=False, progress=None,
        **search_options,
    ):
        """Strings in, `Prediction`s out (`inference.predict_texts`); see `EncoderDecoder.predict_inputs`."""
        from keras_attn_zoo.inference import predict_texts

        return predict_texts(
            self, items, beam_size, batch_size, return_attention, progress=progress, return_details=return_details,
            **search_options,
        )

    def plot_prediction(self, prediction, item, path):
        """The heatmap of output tokens against source tokens (`plots.plot_attention`), copied tokens in red."""
        if prediction.attention is None or not prediction.attention.size:
            return None
        from keras_attn_zoo.plots import plot_attention

        return plot_attention(
            prediction.attention, prediction.source_tokens, prediction.tokens, path,
            marked=prediction.copied, marked_label="copied (p_gen < 0.5)",
        )

    def save_assets(self, dir_path):
        import os

        if self.source_tokenizer is not None:
            self.source_tokenizer.save(os.path.join(dir_path, "source.spm.model"))
            self.target_tokenizer.save(os.path.join(dir_path, "target.spm.model"))

    def load_assets(self, dir_path):
        import os

        from keras_attn_zoo.tokenizer import SubwordTokenizer

        path = os.path.join(dir_path, "source.spm.model")
        if os.path.exists(path):
            self.attach_tokenizers(
                SubwordTokenizer.load(path), SubwordTokenizer.load(os.path.join(dir_path, "target.spm.model"))
            )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "source_vocab_size": self.source_vocab_size,
            "target_vocab_size": self.target_vocab_size,
            "attention": self.attention,
            "placement": self.placement,
            "cell": self.cell,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "encoder_layers": self.encoder_layers,
            "decoder_layers": self.decoder_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "tie_embeddings": self.tie_embeddings,
            "bridge": self.bridge,
            "input_feeding": self.input_feeding,
            "coverage": self.coverage,
            "attention_units": self.attention_units,
            "normalize": self.normalize,
            "scale": self.scale,
            "scale_init": self.scale_init,
            "seed": self.seed,
            "share_embeddings": self.share_embeddings,
            "copy": self.copy,
            "coverage_loss_weight": self.coverage_loss_weight,
            "gate_context": self.gate_context,
            "doubly_stochastic_loss_weight": self.doubly_stochastic_loss_weight,
            "doubly_stochastic_target": self.doubly_stochastic_target,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "search_defaults": self.search_defaults,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

