import keras
from keras import ops
from keras.src.backend import get_keras_mask  # no public alias in Keras 3.15

from keras_attn_zoo.layers import linear
from keras_attn_zoo.layers.bahdanau_attention import BahdanauAttention
from keras_attn_zoo.layers.gru import gru_step
from keras_attn_zoo.layers.luong_attention import SCORE_MODES, LuongAttention
from keras_attn_zoo.layers.scan import scan, scan_real_rows

ATTENTIONS = ("bahdanau",) + SCORE_MODES + (None,)
PLACEMENTS = ("bahdanau", "luong")
CELLS = ("gru", "lstm")
BRIDGES = ("none", "dense", "copy", "mean_memory")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"Received: {name}={value!r}; expected one of " + ", ".join(repr(a) for a in allowed))


@keras.saving.register_keras_serializable(package="keras_attn_zoo")
class AttentionDecoder(keras.layers.Layer):
    """A recurrent decoder with attention inside the recurrence: `tfa.seq2seq.AttentionWrapper`'s successor.

    A stack of GRU or LSTM cells reads the embedded target y_1..y_T; at every step an attention
    layer scores the memory (the encoder states) and the step's context c = Σ_j α_j m_j is used in
    one of two placements:

    - `placement="bahdanau"` (Bahdanau et al., 2015): the query is the previous state s_{i-1},
      the cell reads [y_{i-1}; c_i] and the output is tanh(W_o [s_i; c_i; y_{i-1}]).
    - `placement="luong"` (Luong et al., 2015): the cell reads y_t (joined to h̃_{t-1} with
      `input_feeding=True`), the query is the new state h_t and the output is
      h̃_t = tanh(W_c [c_t; h_t]). Without input feeding no step depends on an earlier attention
      result, so training runs the RNN over all steps first and attends to all of them at once.

    The per-source part of the score (the projected keys) is computed once by `precompute_memory`
    and reused at every step. `coverage=True` keeps the running sum of past weights in the state
    and feeds it to the score (See et al., 2017; Bahdanau attention only).

    Three options of Show, Attend and Tell (Xu et al., 2015), which work for any memory:
    `gate_context=True` scales the context by a learned gate β_t = σ(w_β · q_t + b_β) before it
    is used (§4.2.1), where q_t is the attention query (s_{t-1} in the Bahdanau placement, h_t in
    the Luong one); `bridge="mean_memory"` starts every layer from the masked mean of the memory,
    h_0 = tanh(W_h mean_j m_j + b_h) (and c_0 likewise for LSTM, §3.1.2); and
    `doubly_stochastic_loss_weight=λ` adds λ Σ_i (τ − Σ_t α_ti)² while training (eq. 14), which
    asks every memory position to receive, summed over the steps, about τ of attention.

    Args:
        units: size of each recurrent cell.
        attention: "bahdanau" (additive), a Luong score ("dot", "general", "concat", "cosine"),
            or None: no attention, the classic encoder-decoder whose only view of the source is
            the initial state (the single context vector); its weights are all zero.
        placement: "bahdanau" or "luong"; default "bahdanau" for additive attention, else "luong".
        cell: "gru" or "lstm".
        num_layers: number of stacked cells.
        dropout: rate for the embedded inputs, between stacked cells (one mask per sequence) and
            on the outputs.
        input_feeding: with `placement="luong"`, join h̃_{t-1} to the next input.
        attention_units: hidden size of the additive / concat scoring network (default `units`).
        output_units: size of the output vector (default `units`).
        bridge: how the decoder state starts: "none" (zeros), "dense" (tanh(W s + b) of the
            encoder state s passed as `initial_state`, for every layer and state part), "copy"
            (`initial_state` used as is; sizes must match) or "mean_memory" (tanh(W m̄ + b) of
            the mean m̄ of the real memory positions, one projection per layer and state part, as
            in Xu et al. §3.1.2; `initial_state` is ignored).
        coverage: track coverage and feed it to the score.
        normalize: weight-normalised Bahdanau score.
        scale, scale_init: the multiplier of a Luong score (see `LuongAttention`): learned
            (default for "cosine", from 10) or fixed.
        seed: seed of the dropout masks (input, output and between-layer dropout each get a
            stream of their own).
        coverage_loss_weight: λ of the coverage loss of See et al. (eq. 12), added with
            `add_loss` while training: λ times the mean over real target steps of
            Σ_i min(a_i^t, c_i^t), where c^t = Σ_{t'<t} a^{t'} is the attention paid so far. It
            penalises attending again to what was already attended to (repetition). 0: none.
        gate_context: multiply the context by the gate β_t = σ(w_β · q_t + b_β) of the step's
            query q_t before the cell and the readout use it (Xu et al. §4.2.1); β is returned
            as the feature "gate". Needs attention.
        doubly_stochastic_loss_weight: λ of the doubly stochastic attention loss of Xu et al.
            (eq. 14), added with `add_loss` while training: λ times
            `doubly_stochastic_loss(alignments, mask, memory_mask, doubly_stochastic_target)`,
            Σ_i (τ − Σ_t α_ti)² over the real memory positions i and the real target steps t,
            averaged over the batch. It pushes the attention to cover the whole memory. 0: none.
        doubly_stochastic_target: τ in that loss. 1 (the paper's) asks each position for one
            step's worth of attention. With T steps and N positions the weights sum to T in all,
            so τ = T / N is the value every position gets under a uniform spread (what some
            implementations use); 1 matches it only when T = N.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: embedded decoder inputs (batch, T, E) (the targets shifted right).
        memory: encoder states (batch, Tv, D).
        memory_mask: optional (batch, Tv), True where memory is real.
        initial_state: optional encoder summary (batch, S) (a list [h, c] for LSTM "copy").
        mask: optional (batch, T) decoder mask (from `Embedding(mask_zero=True)`).
        return_alignments: also return the attention weights (batch, T, Tv).
        return_features: also return `{"context": (batch, T, D), "state": (batch, T, units)}`,
            each step's context vector (gated, with `gate_context`) and top cell output (after
            the alignments, if asked); with `gate_context`, also `"gate"`: (batch, T), β_t.

    Example:

    >>> import numpy as np, keras
    >>> target = keras.Input((None,), dtype="int32"); memory = keras.Input((None, 8))
    >>> embedded = keras.layers.Embedding(20, 6)(target)
    >>> outputs = AttentionDecoder(8, attention="bahdanau")(embedded, memory)
    >>> logits = keras.layers.Dense(20)(outputs)
    >>> model = keras.Model([target, memory], logits)
    >>> model.predict([np.ones((2, 5)), np.ones((2, 7, 8))], verbose=0).shape
    (2, 5, 20)

    References: Bahdanau, Cho & Bengio, ICLR 2015; Luong, Pham & Manning, EMNLP 2015;
    See, Liu & Manning, "Get To The Point", ACL 2017 (coverage); Xu et al., "Show, Attend and
    Tell", ICML 2015 (context gate, mean-memory initial state, doubly stochastic attention).
    """

    def __init__(
        self,
        units,
        attention="bahdanau",
        placement=None,
        cell="gru",
        num_layers=1,
        dropout=0.0,
        input_feeding=True,
        attention_units=None,
        output_units=None,
        bridge="dense",
        coverage=False,
        normalize=False,
        scale=None,
        scale_init=None,
        seed=None,
        coverage_loss_weight=0.0,
        gate_context=False,
        doubly_stochastic_loss_weight=0.0,
        doubly_stochastic_target=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _choice("attention", attention, ATTENTIONS)
        placement = placement or ("bahdanau" if attention == "bahdanau" else "luong")
        if attention is None:
            placement, input_feeding = "luong", False
        _choice("placement", placement, PLACEMENTS)
        _choice("cell", cell, CELLS)
        _choice("bridge", bridge, BRIDGES)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Received: num_layers={num_layers!r}; expected an integer >= 1.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Received: dropout={dropout!r}; expected a rate in [0, 1).")
        if coverage_loss_weight and attention is None:
            raise ValueError("Received: coverage_loss_weight with attention=None; the coverage loss reads attention weights.")
        if gate_context and attention is None:
            raise ValueError("Received: gate_context=True with attention=None; there is no context to gate.")
        if doubly_stochastic_loss_weight and attention is None:
            raise ValueError(
                "Received: doubly_stochastic_loss_weight with attention=None; the loss reads attention weights."
            )
        if coverage and attention != "bahdanau":
            raise ValueError(f"Received: coverage=True with attention={attention!r}; coverage needs 'bahdanau'.")
        self.units = units
        self.attention = attention
        self.placement = placement
        self.cell = cell
        self.num_layers = num_layers
        self.dropout = dropout
        self.input_feeding = input_feeding
        self.attention_units = attention_units
        self.output_units = output_units
        self.bridge = bridge
        self.coverage = coverage
        self.normalize = normalize
        self.scale = scale
        self.scale_init = scale_init
        self.seed = seed
        self.coverage_loss_weight = coverage_loss_weight
        self.gate_context = gate_context
        self.doubly_stochastic_loss_weight = doubly_stochastic_loss_weight
        self.doubly_stochastic_target = doubly_stochastic_target
        self.supports_masking = True

        if attention is None:
            self.attention_layer = None
        elif attention == "bahdanau":
            self.attention_layer = BahdanauAttention(
                attention_units or units, normalize=normalize, use_coverage=coverage, name="attention"
            )
        else:
            self.attention_layer = LuongAttention(
                attention,
                units=attention_units if attention == "concat" else None,
                scale=scale,
                scale_init=scale_init,
                name="attention",
            )
        cell_class = keras.layers.GRUCell if cell == "gru" else keras.layers.LSTMCell
        self.cells = [cell_class(units, name=f"cell_{i}") for i in range(num_layers)]
        self.state_parts = 1 if cell == "gru" else 2
        self.bridge_layers = []
        if bridge in ("dense", "mean_memory"):
            self.bridge_layers = [
                keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}_{j}")
                for i in range(num_layers)
                for j in range(self.state_parts)
            ]
        self.readout = keras.layers.Dense(output_units or units, activation="tanh", name="readout")
        self.gate_layer = keras.layers.Dense(1, activation="sigmoid", name="context_gate") if gate_context else None
        # Three random streams: one seed for all would give the input and output dropout the same
        # masks wherever their shapes agree.
        seeds = (None, None, None) if seed is None else (seed, seed + 1, seed + 2)
        self.input_dropout = keras.layers.Dropout(dropout, seed=seeds[0])
        self.output_dropout = keras.layers.Dropout(dropout, seed=seeds[1])
        self.seed_generator = keras.random.SeedGenerator(seeds[2])

    # -- Shapes and weights ---------------------------------------------------------------------
    # Whether a training call (`training=True`, as in `fit`) runs each row over its real steps only
    # (`scan_real_rows`), not over the padding after its end, where the loop's outputs are then
    # zeros (the parallel placement still attends there after the loop; the mask hides padded
    # steps from losses and metrics). TensorFlow without XLA only: the zoo's models turn
    # it on in `compile` when that holds. A runtime setting: not saved, no effect on any real
    # step's output; calls that do not train (predict, evaluate) keep the dense loop's outputs.
    pack_rows = False
    # The auxiliary losses (coverage, doubly stochastic; those with a weight, in that order) of the
    # latest call that did not train: computed, not added (`add_loss` is for training calls), so
    # that a model can log them in evaluation. Empty after a training call.
    untrained_losses = ()
    # Whether a training call multiplies by transposed copies of the loop's kernels
    # (`keras_attn_zoo.layers.linear`: the same outputs and gradients, faster on TensorFlow); off,
    # TensorFlow's own products. A runtime setting for comparisons (benchmarks, tests): not saved.
    transposed_copies = True

    def _packed_lengths(self, mask, training):
        """Each row's steps up to its last real one, when `pack_rows` applies; else None."""
        if not (self.pack_rows and training) or mask is None or keras.backend.backend() != "tensorflow":
            return None
        positions = ops.arange(1, ops.shape(mask)[1] + 1, dtype="int32")
        return ops.max(ops.where(ops.cast(mask, "bool"), positions[None, :], 0), axis=1)

    @property
    def parallel(self):
        """True when training can attend to all steps at once after the RNN (no recurrence through attention)."""
        return self.attention is None or (self.placement == "luong" and not self.input_feeding and not self.coverage)

    @property
    def output_size(self):
        return self.output_units or self.units

    def _cell_input_dim(self, embed_dim, memory_dim):
        if self.placement == "bahdanau":
            return embed_dim + memory_dim
        return embed_dim + (self.output_size if self.input_feeding else 0)

    def build(self, inputs_shape, memory_shape, memory_mask_shape=None, initial_state_shape=None):
        if len(inputs_shape) != 3 or len(memory_shape) != 3:
            raise ValueError(
                f"Layer {self.name!r} expects inputs (batch, T, E) and memory (batch, Tv, D). "
                f"Received: inputs shape={tuple(inputs_shape)}, memory shape={tuple(memory_shape)}"
            )
        embed_dim, memory_dim = inputs_shape[-1], memory_shape[-1]
        query_dim = self.units
        if self.attention_layer is not None:
            self.attention_layer.build([(None, query_dim), tuple(memory_shape)])
        input_dim = self._cell_input_dim(embed_dim, memory_dim)
        for i, cell in enumerate(self.cells):
            cell.build((None, input_dim if i == 0 else self.units))
        if self.attention is None:
            self.readout.build((None, self.units))
        elif self.placement == "bahdanau":
            self.readout.build((None, self.units + memory_dim + embed_dim))
        else:
            self.readout.build((None, memory_dim + self.units))
        if self.gate_layer is not None:
            self.gate_layer.build((None, query_dim))
        if self.bridge == "dense" and initial_state_shape is not None:
            state_dim = _first_shape(initial_state_shape)[-1]
            for layer in self.bridge_layers:
                layer.build((None, state_dim))
        if self.bridge == "mean_memory":
            for layer in self.bridge_layers:
                layer.build((None, memory_dim))
        self.built = True

    # -- The single-step API (inference, beam search) -------------------------------------------
    def precompute_memory(self, memory, memory_mask=None):
        """Work done once per source: the projected keys. Returns a dict for `step`."""
        if not self.built:
            raise ValueError(
                f"Layer {self.name!r} is not built: call it once on (inputs, memory) or call "
                "`build(inputs_shape, memory_shape)` before using the single-step API."
            )
        return {
            "values": memory,
            "keys": None if self.attention_layer is None else self.attention_layer.process_key(memory),
            "mask": None if memory_mask is None else ops.cast(memory_mask, "bool"),
        }

    def get_initial_state(self, memory, initial_state=None):
        """The decoder state before the first step, as a dict of tensors.

        `memory` is the (batch, Tv, D) encoder output (or the dict from `precompute_memory`);
        `initial_state` the encoder summary passed through the bridge. `bridge="mean_memory"`
        ignores `initial_state` and averages the memory over its real positions: pass the dict
        from `precompute_memory` for its mask to count (a bare tensor is averaged over all).
        """
        values = memory["values"] if isinstance(memory, dict) else memory
        batch = ops.shape(values)[0]
        zeros = ops.zeros((batch, self.units), dtype=self.compute_dtype)
        parts = None
        if self.bridge == "mean_memory":
            mean = masked_mean(values, memory.get("mask") if isinstance(memory, dict) else None)
            parts = [
                [self.bridge_layers[i * self.state_parts + j](mean) for j in range(self.state_parts)]
                for i in range(self.num_layers)
            ]
        elif initial_state is not None and self.bridge != "none":
            given = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            parts = []
            for i in range(self.num_layers):
                layer_parts = []
                for j in range(self.state_parts):
                    source = given[j] if j < len(given) else given[0]
                    if self.bridge == "dense":
                        layer_parts.append(self.bridge_layers[i * self.state_parts + j](source))
                    else:
                        if source.shape[-1] != self.units:
                            raise ValueError(
                                f"Layer {self.name!r}: bridge='copy' needs an initial state of size units="
                                f"{self.units}. Received: initial_state shape={tuple(source.shape)}; use "
                                "bridge='dense' to project it."
                            )
                        layer_parts.append(ops.cast(source, self.compute_dtype))
                parts.append(layer_parts)
        state = {"cells": parts or [[zeros] * self.state_parts for _ in range(self.num_layers)]}
        if self.feeds_output:
            state["feed"] = ops.zeros((batch, self.output_size), dtype=self.compute_dtype)
        if self.coverage:
            state["coverage"] = ops.zeros(ops.shape(values)[:2], dtype=self.compute_dtype)
        return state

    def step(self, inputs, state, memory, training=False, dropout_masks=None, return_features=False):
        """One decoder step: `inputs` (batch, E) the embedded previous token.

        Returns `(output, new_state, weights)` with output (batch, output_units) and weights
        (batch, Tv). `memory` is the dict from `precompute_memory`. With `return_features=True`
        a fourth item, `{"context": (batch, D), "state": (batch, units)}`, holds the step's
        context vector (after the gate, with `gate_context`) and top cell output (what a copy
        switch reads; zeros context without attention), and with `gate_context` also
        `"gate"`: (batch,), the step's β.
        """
        new_state, weights, features = self._advance(inputs, state, memory, training, dropout_masks)
        output = self._readout(self._readout_input(features["state"], features["context"], inputs))
        if self.feeds_output:
            new_state["feed"] = output
        if return_features:
            return output, new_state, weights, features
        return output, new_state, weights

    @property
    def feeds_output(self):
        """True when a step's output is part of the next step's input (Luong's input feeding): only
        then does the readout have to run inside the training loop."""
        return self.placement == "luong" and self.input_feeding

    def _advance(self, inputs, state, memory, training=False, dropout_masks=None, projected=None):
        """A step up to the readout: `(new_state, weights, features)` (features as `step` returns them).

        `projected`: None, or the second item of `_project_tokens` (a GRU decoder's loop) when
        `inputs` is the step's token already multiplied by the first cell's kernel rows for it.
        """

        def first_input(extra):
            if projected is None:
                return inputs if extra is None else ops.concatenate([inputs, extra], -1)
            return _Projected(inputs, extra, projected["rest_kernel"])

        coverage = state.get("coverage")
        new_state = {}
        gate = None
        if self.attention is None:
            cells, top = self._run_cells(first_input(None), state["cells"], training, dropout_masks)
            weights = ops.zeros(ops.shape(memory["values"])[:2], dtype=top.dtype)
            context = ops.zeros_like(memory["values"][:, 0])
        elif self.placement == "bahdanau":
            query = state["cells"][-1][0]
            context, weights = self.attention_layer.attend(
                query, memory["keys"], memory["values"], memory["mask"], coverage
            )
            context, gate = self._gate(query, context)
            cells, top = self._run_cells(first_input(context), state["cells"], training, dropout_masks)
        else:
            cell_input = first_input(state["feed"] if self.input_feeding else None)
            cells, top = self._run_cells(cell_input, state["cells"], training, dropout_masks)
            context, weights = self.attention_layer.attend(top, memory["keys"], memory["values"], memory["mask"], coverage)
            context, gate = self._gate(top, context)
        new_state["cells"] = cells
        if coverage is not None:
            new_state["coverage"] = coverage + weights
        features = {"context": context, "state": top}
        if gate is not None:
            features["gate"] = gate
        return new_state, weights, features

    def _readout_input(self, top, context, inputs):
        """What the readout reads, for one step (batch, ...) or all of them (batch, T, ...)."""
        if self.attention is None:
            return top
        if self.placement == "bahdanau":
            return ops.concatenate([top, context, inputs], -1)
        return ops.concatenate([context, top], -1)

    def _gate(self, query, context):
        """Xu et al.'s β = σ(w_β · query + b_β) and the context it scales; (context, None) without the gate."""
        if self.gate_layer is None:
            return context, None
        gate = self.gate_layer(query)  # (..., 1)
        return context * ops.cast(gate, context.dtype), ops.squeeze(gate, -1)

    def _run_cells(self, x, cell_states, training=False, dropout_masks=None):
        new_states = []
        for i, cell in enumerate(self.cells):
            if i > 0 and dropout_masks is not None:
                x = x * dropout_masks[i - 1]
            if isinstance(x, _Projected):
                projected = x.tokens if x.extra is None else x.tokens + linear.matmul(x.extra, x.rest_kernel)
                x = gru_step(cell, projected, cell_states[i][0])
                states = [x]
            elif self.cell == "gru" and linear.has_copy(cell.kernel):
                x = gru_step(cell, linear.matmul(x, cell.kernel) + cell.bias[0], cell_states[i][0])
                states = [x]
            else:
                x, states = cell(x, list(cell_states[i]), training=training)
            new_states.append(list(states))
        return new_states, x

    def _readout(self, x):
        """The output layer tanh(W_o x + b_o), with `linear.matmul` inside a training loop."""
        if linear.has_copy(self.readout.kernel):
            return ops.tanh(linear.matmul(x, self.readout.kernel) + self.readout.bias)
        return self.readout(x)

    def _loop_kernels(self, projected=None):
        """The kernels a training loop multiplies by at every step (see `linear.transposed_weights`):
        the GRU cells' (an LSTM keeps Keras' cell; for the first cell, the rest kernel of
        `_project_tokens`' `projected`, if any), the readout's where the output is fed back
        (`feeds_output`) and, unless the placement attends after the loop (`parallel`), the
        attention query's."""
        kernels = []
        if self.cell == "gru":
            for i, cell in enumerate(self.cells):
                input_kernel = cell.kernel if i > 0 or projected is None else projected["rest_kernel"]
                kernels += [k for k in (input_kernel, cell.recurrent_kernel) if k is not None]
        if self.feeds_output:
            kernels.append(self.readout.kernel)
        if not self.parallel:
            query_kernel = getattr(self.attention_layer, "query_kernel", None)
            if query_kernel is not None:
                kernels.append(query_kernel)
        return kernels

    def _project_tokens(self, x):
        """`(products, projected)`: every step's embedded token (batch, T, E) multiplied by the first
        GRU cell's kernel rows for it, plus the input bias, in one product before the loop rather
        than one a step, and `{"rest_kernel": ...}`, the kernel's other rows, for what the cell
        reads besides the token (None if nothing). `(x, None)` for LSTM cells (Keras' cell)."""
        if self.cell != "gru":
            return x, None
        cell, embed_dim = self.cells[0], x.shape[-1]
        products = ops.matmul(x, cell.kernel[:embed_dim]) + cell.bias[0]
        return products, {"rest_kernel": cell.kernel[embed_dim:] if cell.kernel.shape[0] > embed_dim else None}

    def _dropout_masks(self, batch, training):
        """One dropout mask per sequence between stacked cells, drawn before the loop.

        Drawing them outside the loop keeps random state out of `ops.scan`, which every backend
        traces once (Gal & Ghahramani's variational dropout for RNNs).
        """
        if not training or self.dropout == 0.0 or self.num_layers == 1:
            return None
        ones = ops.ones((batch, self.units), dtype=self.compute_dtype)
        return [
            keras.random.dropout(ones, self.dropout, seed=self.seed_generator) for _ in range(self.num_layers - 1)
        ]

    # -- Teacher-forced training call -----------------------------------------------------------
    def call(
        self,
        inputs,
        memory,
        memory_mask=None,
        initial_state=None,
        mask=None,
        training=None,
        return_alignments=False,
        return_features=False,
    ):
        if mask is None:
            # With several tensor arguments Keras fills in `memory_mask` but not `mask`: take the
            # decoder mask that `Embedding(mask_zero=True)` attached to the inputs.
            mask = get_keras_mask(inputs)
        bundle = self.precompute_memory(memory, memory_mask)
        state = self.get_initial_state(bundle, initial_state)
        x = self.input_dropout(inputs, training=training)
        masks = self._dropout_masks(ops.shape(x)[0], training)
        tokens, projected = self._project_tokens(x)
        steps = ops.transpose(tokens, (1, 0, 2))
        gate = None
        lengths = self._packed_lengths(mask, training)

        def loop(body, init):
            """`body(carry, x_t, (bundle, masks))` over the steps: all of them, or each row's real ones."""
            kernels = self._loop_kernels(projected) if training and self.transposed_copies else []
            with linear.transposed_weights(kernels):
                if lengths is None:
                    return scan(lambda carry, x_t: body(carry, x_t, (bundle, masks)), init, steps)
                return None, scan_real_rows(body, init, steps, lengths, (bundle, masks))

        if self.parallel:
            def body(carry, x_t, context):
                first_input = x_t if projected is None else _Projected(x_t, None, None)
                cells, top = self._run_cells(first_input, carry, training, context[1])
                return cells, top

            _, tops = loop(body, state["cells"])
            tops = ops.transpose(tops, (1, 0, 2))
            if self.attention is None:
                alignments = ops.zeros(ops.shape(tops)[:2] + ops.shape(memory)[1:2], dtype=tops.dtype)
                context = ops.zeros(ops.shape(tops)[:2] + ops.shape(memory)[2:], dtype=tops.dtype)
            else:
                context, alignments = self.attention_layer.attend(
                    tops, bundle["keys"], bundle["values"], bundle["mask"]
                )
                context, gate = self._gate(tops, context)
            outputs = self.readout(self._readout_input(tops, context, x))
        elif self.feeds_output:
            def body(carry, x_t, context):
                new_state, weights, features = self._advance(x_t, carry, context[0], training, context[1], projected)
                output = self._readout(self._readout_input(features["state"], features["context"], None))
                new_state["feed"] = output
                return new_state, (output, weights, features)

            _, (outputs, alignments, features) = loop(body, state)
            outputs, alignments, context, tops = (
                ops.transpose(t, (1, 0, 2)) for t in (outputs, alignments, features["context"], features["state"])
            )
        else:
            # No step reads an earlier output: the readout runs once, over all steps, after the loop.
            def body(carry, x_t, context):
                new_state, weights, features = self._advance(x_t, carry, context[0], training, context[1], projected)
                return new_state, (weights, features)

            _, (alignments, features) = loop(body, state)
            alignments, context, tops = (
                ops.transpose(t, (1, 0, 2)) for t in (alignments, features["context"], features["state"])
            )
            outputs = self.readout(self._readout_input(tops, context, x))
        if not self.parallel and "gate" in features:
            gate = ops.transpose(features["gate"], (1, 0))
        outputs = self.output_dropout(outputs, training=training)
        auxiliary = []
        if self.coverage_loss_weight:
            auxiliary.append(self.coverage_loss_weight * coverage_loss(alignments, mask))
        if self.doubly_stochastic_loss_weight:
            auxiliary.append(
                self.doubly_stochastic_loss_weight
                * doubly_stochastic_loss(alignments, mask, bundle["mask"], self.doubly_stochastic_target)
            )
        if training:
            for loss in auxiliary:
                self.add_loss(loss)
        # Outside training they join no loss, but a model logs them (`val_coverage_loss` in `fit`).
        self.untrained_losses = () if training else tuple(auxiliary)
        if not (return_alignments or return_features):
            return outputs
        results = [outputs]
        if return_alignments:
            if mask is not None:
                alignments = alignments * ops.expand_dims(ops.cast(mask, alignments.dtype), -1)
            results.append(alignments)
        if return_features:
            features = {"context": context, "state": tops}
            if self.gate_layer is not None:
                features["gate"] = gate
            results.append(features)
        return tuple(results)

    def compute_mask(self, inputs, previous_mask=None):
        # Keras calls `compute_mask(inputs, previous_mask)`, the decoder mask (passed or attached
        # to the inputs): the outputs keep it, so a loss downstream skips padded target steps.
        return previous_mask

    def compute_output_spec(self, inputs, memory, memory_mask=None, initial_state=None, mask=None, training=None,
                            return_alignments=False, return_features=False):
        batch, steps = inputs.shape[0], inputs.shape[1]
        outputs = keras.KerasTensor((batch, steps, self.output_size), dtype=self.compute_dtype)
        if not (return_alignments or return_features):
            return outputs
        results = [outputs]
        if return_alignments:
            results.append(keras.KerasTensor((batch, steps, memory.shape[1]), dtype=self.compute_dtype))
        if return_features:
            features = {
                "context": keras.KerasTensor((batch, steps, memory.shape[2]), dtype=self.compute_dtype),
                "state": keras.KerasTensor((batch, steps, self.units), dtype=self.compute_dtype),
            }
            if self.gate_layer is not None:
                features["gate"] = keras.KerasTensor((batch, steps), dtype=self.compute_dtype)
            results.append(features)
        return tuple(results)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "attention": self.attention,
                "placement": self.placement,
                "cell": self.cell,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "input_feeding": self.input_feeding,
                "attention_units": self.attention_units,
                "output_units": self.output_units,
                "bridge": self.bridge,
                "coverage": self.coverage,
                "normalize": self.normalize,
                "scale": self.scale,
                "scale_init": self.scale_init,
                "seed": self.seed,
                "coverage_loss_weight": self.coverage_loss_weight,
                "gate_context": self.gate_context,
                "doubly_stochastic_loss_weight": self.doubly_stochastic_loss_weight,
                "doubly_stochastic_target": self.doubly_stochastic_target,
            }
        )
        return config


class _Projected:
    """The first cell's input in a training loop whose tokens' products are done before it
    (`AttentionDecoder._project_tokens`): the step's `tokens` product, what the cell reads besides
    (`extra`, or None) and the kernel rows for it (`rest_kernel`)."""

    def __init__(self, tokens, extra, rest_kernel):
        self.tokens, self.extra, self.rest_kernel = tokens, extra, rest_kernel


def _first_shape(shape):
    """The shape of a single tensor, or of the first of a list of tensors."""
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return shape[0]
    return shape


def coverage_loss(alignments, mask=None):
    """See et al.'s coverage loss, Σ_i min(a_i^t, c_i^t) with c^t = Σ_{t'<t} a^{t'}, averaged over real steps.

    alignments: (batch, T, Tv) attention weights; mask: optional (batch, T), True at real steps.
    """
    alignments = ops.cast(alignments, "float32")
    coverage = ops.cumsum(alignments, axis=1) - alignments
    per_step = ops.sum(ops.minimum(alignments, coverage), axis=-1)
    if mask is None:
        return ops.mean(per_step)
    mask = ops.cast(mask, "float32")
    return ops.sum(per_step * mask) / ops.maximum(ops.sum(mask), 1.0)


def masked_mean(values, mask=None):
    """The mean of (batch, Tv, D) `values` over the positions where the (batch, Tv) `mask` is True.

    Padded positions count neither in the sum nor in the number of positions; a row with no real
    position gives zeros.
    """
    if mask is None:
        return ops.mean(values, axis=1)
    weights = ops.cast(mask, values.dtype)
    total = ops.sum(values * ops.expand_dims(weights, -1), axis=1)
    count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), ops.cast(1.0, values.dtype))
    return total / count


def doubly_stochastic_loss(alignments, mask=None, memory_mask=None, target=1.0):
    """Xu et al.'s doubly stochastic attention penalty Σ_i (τ − Σ_t α_ti)² (eq. 14), averaged over the batch.

    The weights of each step already sum to 1 over the memory; this asks the weights each memory
    position receives, summed over the steps, to be τ too. With T steps and N positions they sum
    to T in all, so τ = T / N is what a uniform spread gives each position.

    alignments: (batch, T, Tv) attention weights; mask: optional (batch, T), True at the real
    target steps (only those are summed over t); memory_mask: optional (batch, Tv), True at the
    real memory positions (only those are summed over i); target: τ.
    """
    alignments = ops.cast(alignments, "float32")
    if mask is not None:
        alignments = alignments * ops.expand_dims(ops.cast(mask, "float32"), -1)
    per_position = ops.square(target - ops.sum(alignments, axis=1))  # (batch, Tv)
    if memory_mask is not None:
        per_position = per_position * ops.cast(memory_mask, "float32")
    return ops.mean(ops.sum(per_position, axis=-1))
