"""The size of a `Seq2Seq` or `Captioner` computed from its constructor arguments, before anything is built.

Loading a checkpoint somebody else published must not let its `config.json` decide how much
memory this process allocates: `units = 10000000` would otherwise build GRU kernels of 10^14
floats and end in the kernel's OOM killer. `parameter_count(arguments)` gives the exact count
`model.count_params()` would report (tests/test_model_size.py checks it against built models of
every attention, cell and option), so a loader can refuse a config before building it.
`parameter_count(arguments, "Captioner")` counts a captioner's trained part, what its
model.weights.h5 holds: the frozen CNN is rebuilt at load from its weights package (or the
checkpoint's assets) and is not among them.

Keras 3 weight shapes used here: `GRUCell` (reset_after=True) has a kernel (in, 3u), a recurrent
kernel (u, 3u) and a bias (2, 3u); `LSTMCell` (in, 4u), (u, 4u), (4u,); `Dense` (in, out) + (out,).
"""

import inspect
import numbers

BYTES_PER_PARAMETER = 4  # float32: the model's config cannot set a dtype policy
# The fewest bytes a weights file may spend on one parameter: checkpoints may store float16
# (`checkpoint.save_checkpoint(weights_dtype="float16")`; Keras casts them back to float32 at load).
MIN_BYTES_PER_PARAMETER = 2
# The largest model a checkpoint may ask for: 1e9 float32 parameters are 4 GB of weights, before
# the optimizer, activations and search buffers. The bundled presets have about 3.3 million.
MAX_PARAMETERS = 1_000_000_000

# Arguments that multiply the size: each must be a plain integer >= 1.
_SIZE_ARGUMENTS = (
    "source_vocab_size",
    "target_vocab_size",
    "embedding_dim",
    "units",
    "encoder_layers",
    "decoder_layers",
)
# The same for a Captioner.
_CAPTIONER_SIZE_ARGUMENTS = ("vocab_size", "embedding_dim", "units", "feature_channels", "feature_grid", "image_size")
# Size arguments that may also be None (the layer's default).
_OPTIONAL_SIZE_ARGUMENTS = ("attention_units",)


def _model_class(name):
    from keras_attn_zoo.models.captioner import Captioner
    from keras_attn_zoo.models.seq2seq import Seq2Seq

    classes = {"Seq2Seq": Seq2Seq, "Captioner": Captioner}
    if name not in classes:
        raise ValueError(f"Received: model class {name!r}; expected one of {sorted(classes)}.")
    return classes[name]


def _defaults(class_name="Seq2Seq"):
    return {
        name: parameter.default
        for name, parameter in inspect.signature(_model_class(class_name).__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


def _rnn(cell, input_dim, units):
    if cell == "lstm":
        return 4 * units * (input_dim + units + 1)
    return 3 * units * (input_dim + units + 2)


def _dense(input_dim, output_dim):
    return input_dim * output_dim + output_dim


def _attention(a, query_dim, key_dim):
    """Weights of the decoder's attention layer (see BahdanauAttention and LuongAttention)."""
    attention = a["attention"]
    if attention is None:
        return 0
    if attention == "bahdanau":
        units = int(a["attention_units"] or query_dim)
        total = query_dim * units + key_dim * units + units
        total += units if a["coverage"] else 0
        total += units + 1 if a["normalize"] else 0  # score bias and gain
        return total
    learned_scale = attention == "cosine" if a["scale"] is None else bool(a["scale"])
    total = 1 if learned_scale else 0
    if attention == "general":
        total += key_dim * query_dim
    elif attention == "concat":
        units = int(a["attention_units"] or key_dim)
        total += query_dim * units + key_dim * units + units
    return total


def checked_size_arguments(arguments, class_name="Seq2Seq"):
    """The config's arguments merged with the class's defaults, the size arguments checked.

    Raises:
        ValueError: a size argument that is not an integer >= 1, or an unknown class.
    """
    merged = {**_defaults(class_name), **arguments}
    size_arguments = _CAPTIONER_SIZE_ARGUMENTS if class_name == "Captioner" else _SIZE_ARGUMENTS
    for name in size_arguments:
        value = merged.get(name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"Received: {name}={value!r}; expected an integer >= 1.")
    for name in _OPTIONAL_SIZE_ARGUMENTS:
        value = merged.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"Received: {name}={value!r}; expected an integer >= 1 or None.")
    return merged


def parameter_count(arguments, class_name="Seq2Seq"):
    """The number of weights `Seq2Seq(**arguments)` (or `Captioner`) would have, without building it.

    Args:
        arguments: the class's constructor arguments (a checkpoint's `config`); missing ones take
            its defaults.
        class_name: "Seq2Seq" or "Captioner" (a checkpoint's `class`).

    Raises:
        ValueError: a size argument that is not an integer >= 1, or an unknown class.
    """
    _model_class(class_name)  # an unknown class: one line
    if class_name == "Captioner":
        return _captioner_count(checked_size_arguments(arguments, class_name))
    a = checked_size_arguments(arguments)
    units, embedding = int(a["units"]), int(a["embedding_dim"])
    cell, attention = a["cell"], a["attention"]
    source_vocab, target_vocab = int(a["source_vocab_size"]), int(a["target_vocab_size"])
    tied = bool(a["tie_embeddings"])

    # One matrix when the source shares the target's embedding (summarization).
    total = (0 if a["share_embeddings"] else source_vocab * embedding) + target_vocab * embedding
    total += target_vocab if tied else _dense(units, target_vocab)  # TiedEmbedding's bias, or a projection

    directions = 2 if a["bidirectional"] else 1
    encoder_units = units // directions
    for layer in range(int(a["encoder_layers"])):
        input_dim = embedding if layer == 0 else encoder_units * directions
        total += directions * _rnn(cell, input_dim, encoder_units)
    memory_dim = state_dim = encoder_units * directions

    placement = a["placement"] or ("bahdanau" if attention == "bahdanau" else "luong")
    input_feeding = bool(a["input_feeding"])
    if attention is None:
        placement, input_feeding = "luong", False
    output_units = embedding if tied else units
    total += _attention(a, units, memory_dim)
    if a["gate_context"]:
        total += _dense(units, 1)  # Xu et al.'s β, from the attention query
    if placement == "bahdanau":
        cell_input = embedding + memory_dim
    else:
        cell_input = embedding + (output_units if input_feeding else 0)
    for layer in range(int(a["decoder_layers"])):
        total += _rnn(cell, cell_input if layer == 0 else units, units)
    if attention is None:
        readout_input = units
    elif placement == "bahdanau":
        readout_input = units + memory_dim + embedding
    else:
        readout_input = memory_dim + units
    total += _dense(readout_input, output_units)
    if a["copy"]:
        total += _dense(memory_dim + units + embedding, 1)  # the copy switch: p_gen from [c; s; x]
    if a["bridge"] in ("dense", "mean_memory"):
        state_parts = 2 if cell == "lstm" else 1
        bridge_input = state_dim if a["bridge"] == "dense" else memory_dim  # the encoder state, or the mean memory
        total += int(a["decoder_layers"]) * state_parts * _dense(bridge_input, units)
    return total


def _captioner_count(a):
    """A Captioner's trained weights: embedding, grid projection, Xu et al.'s decoder, output."""
    units, embedding = int(a["units"]), int(a["embedding_dim"])
    vocab, channels, cell = int(a["vocab_size"]), int(a["feature_channels"]), a["cell"]
    tied = bool(a["tie_embeddings"])
    total = vocab * embedding + (vocab if tied else _dense(units, vocab))  # TiedEmbedding's bias, or a projection
    total += _dense(channels, units)  # the feature projection: the memory has `units` channels
    if a.get("position_embedding"):
        total += int(a["feature_grid"]) ** 2 * units  # a learned vector per grid position
    if a.get("train_encoder"):  # the CNN is part of the checkpoint: count it (built symbolically, random weights)
        from keras_attn_zoo.encoders import build_image_encoder

        total += build_image_encoder(a["encoder"], None, int(a["image_size"]), a.get("feature_layer")).count_params()
    memory_dim = units
    total += _attention({**a, "coverage": False}, units, memory_dim)
    if a["gate_context"]:
        total += _dense(units, 1)  # β from h_{t-1}
    output_units = embedding if tied else units
    if (a["placement"] or "bahdanau") == "bahdanau":
        total += _rnn(cell, embedding + memory_dim, units)  # [y_{t-1}; context]
        total += _dense(units + memory_dim + embedding, output_units)  # the readout
    else:  # Luong placement: [y_{t-1}; the previous attentional vector if fed]
        total += _rnn(cell, embedding + (output_units if a["input_feeding"] else 0), units)
        total += _dense(memory_dim + units, output_units)
    if a["bridge"] == "mean_memory":  # "dense" has no encoder state to read: no weights
        total += (2 if cell == "lstm" else 1) * _dense(memory_dim, units)
    return total
