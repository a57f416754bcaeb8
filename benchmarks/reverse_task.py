"""Reverse random digit strings: attention against the single context vector.

The same small GRU encoder-decoder is trained twice, teacher-forced, for the same number of steps
with the same seed and data:

- attention: `AttentionDecoder(attention="bahdanau")` reads the encoder states at every step;
- baseline: the classic sequence-to-sequence model (Sutskever et al., 2014; Cho et al., 2014),
  a plain `keras.layers.GRU` decoder started from the encoder's final state and nothing else.

Strings of 20-30 digits are too long to squeeze through one vector of this size, so the baseline
gets the first few reversed digits right and then guesses, while attention only has to learn to
look at position L - i. Both are evaluated on held-out strings with greedy decoding, one step at a
time (`precompute_memory` / `get_initial_state` / `step` for the attention decoder, the GRU's own
cell for the baseline). Token accuracy is the fraction of the true output positions (the reversed
digits) predicted right.

The last line printed is `attention=<accuracy> baseline=<accuracy>`.

    python benchmarks/reverse_task.py            # full run, a few minutes on 2 CPU cores
    python benchmarks/reverse_task.py --quick    # smoke run, far from converged
"""

import argparse
import os
import time

from keras_attn_zoo.native_logs import quiet_import  # noqa: E402

quiet_import("keras")  # TensorFlow's load-time log lines silenced; oneDNN stays on

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_attn_zoo.layers import AttentionDecoder  # noqa: E402

PAD, BOS, EOS = 0, 1, 2
FIRST_DIGIT = 3
VOCAB = FIRST_DIGIT + 10


def make_data(count, min_len, max_len, rng):
    """Source digits, decoder inputs (BOS + reversed) and targets (reversed + EOS), zero-padded."""
    lengths = rng.integers(min_len, max_len + 1, size=count)
    source = np.full((count, max_len), PAD, dtype="int32")
    decoder_in = np.full((count, max_len + 1), PAD, dtype="int32")
    target = np.full((count, max_len + 1), PAD, dtype="int32")
    for i, length in enumerate(lengths):
        digits = rng.integers(FIRST_DIGIT, VOCAB, size=length)
        source[i, :length] = digits
        decoder_in[i, 0] = BOS
        decoder_in[i, 1 : length + 1] = digits[::-1]
        target[i, :length] = digits[::-1]
        target[i, length] = EOS
    return source, decoder_in, target, lengths


def build(use_attention, embed_dim, units):
    """The shared encoder and one of the two decoders; returns the model and its parts for decoding."""
    source = keras.Input((None,), dtype="int32", name="source")
    decoder_in = keras.Input((None,), dtype="int32", name="decoder_in")
    embedded_source = keras.layers.Embedding(VOCAB, embed_dim, mask_zero=True, name="source_embedding")(source)
    memory, forward_h, backward_h = keras.layers.Bidirectional(
        keras.layers.GRU(units // 2, return_sequences=True, return_state=True), name="encoder"
    )(embedded_source)
    encoder_state = keras.layers.Concatenate(name="encoder_state")([forward_h, backward_h])
    memory_mask = ops.not_equal(source, PAD)
    target_embedding = keras.layers.Embedding(VOCAB, embed_dim, mask_zero=True, name="target_embedding")
    embedded_target = target_embedding(decoder_in)
    if use_attention:
        decoder = AttentionDecoder(units, attention="bahdanau", name="decoder")
        outputs = decoder(embedded_target, memory, memory_mask=memory_mask, initial_state=encoder_state)
    else:
        decoder = keras.layers.GRU(units, return_sequences=True, name="decoder")
        outputs = decoder(embedded_target, initial_state=encoder_state)
    projection = keras.layers.Dense(VOCAB, name="logits")
    model = keras.Model([source, decoder_in], projection(outputs))
    encoder = keras.Model(source, [memory, memory_mask, encoder_state])
    return model, encoder, target_embedding, decoder, projection


def greedy_decode(use_attention, parts, source, steps):
    """Feed back the argmax token for `steps` steps; returns (batch, steps) token ids."""
    _, encoder, target_embedding, decoder, projection = parts
    memory, memory_mask, encoder_state = encoder(source, training=False)
    token = ops.full((source.shape[0],), BOS, dtype="int32")
    if use_attention:
        bundle = decoder.precompute_memory(memory, memory_mask)
        state = decoder.get_initial_state(bundle, encoder_state)
    else:
        state = [encoder_state]
    predicted = []
    for _ in range(steps):
        # The embedding table looked up directly: the layer would attach a padding mask that the
        # single-step calls have no use for.
        x = ops.take(target_embedding.embeddings, token, axis=0)
        if use_attention:
            output, state, _ = decoder.step(x, state, bundle)
        else:
            output, state = decoder.cell(x, state)
        token = ops.cast(ops.argmax(projection(output), axis=-1), "int32")
        predicted.append(token)
    return ops.convert_to_numpy(ops.stack(predicted, axis=1))


def token_accuracy(predicted, target, lengths):
    positions = np.arange(target.shape[1])[None, :] < lengths[:, None]
    return float(((predicted[:, : target.shape[1]] == target) & positions).sum() / positions.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training set (default 4)")
    parser.add_argument("--train-size", type=int, default=None, help="training strings (default 12800)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--units", type=int, default=128, help="decoder units; the encoder is 2 x units/2")
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--min-len", type=int, default=20)
    parser.add_argument("--max-len", type=int, default=30)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = parser.parse_args()
    epochs = args.epochs or (1 if args.quick else 4)
    train_size = args.train_size or (640 if args.quick else 12800)

    steps_per_epoch = -(-train_size // args.batch_size)
    rng = np.random.default_rng(args.seed)
    train = make_data(train_size, args.min_len, args.max_len, rng)
    test_source, _, test_target, test_lengths = make_data(args.eval_size, args.min_len, args.max_len, rng)
    print(
        f"reverse task: {train_size} training strings of {args.min_len}-{args.max_len} digits, "
        f"{epochs} epochs of batch {args.batch_size}, {args.eval_size} held-out strings"
    )

    results = {}
    for name in ("attention", "baseline"):
        use_attention = name == "attention"
        keras.utils.set_random_seed(args.seed)
        parts = build(use_attention, args.embed_dim, args.units)
        model = parts[0]
        # Cosine decay to zero: a constant rate this high leaves the attention model spiking late on.
        schedule = keras.optimizers.schedules.CosineDecay(args.learning_rate, epochs * steps_per_epoch)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD),
        )
        start = time.perf_counter()
        history = model.fit(
            [train[0], train[1]], train[2], batch_size=args.batch_size, epochs=epochs, shuffle=True, verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs, name=name: print(
                f"  {name} epoch {epoch + 1}/{epochs}: loss={logs['loss']:.4f}", flush=True))],
        )
        train_seconds = time.perf_counter() - start
        predicted = greedy_decode(use_attention, parts, test_source, args.max_len + 1)
        results[name] = token_accuracy(predicted, test_target, test_lengths)
        print(
            f"{name}: {model.count_params()} parameters, final loss {history.history['loss'][-1]:.4f}, "
            f"trained in {train_seconds:.0f}s, held-out token accuracy {results[name]:.3f}",
            flush=True,
        )
    print(f"attention={results['attention']:.3f} baseline={results['baseline']:.3f}")


if __name__ == "__main__":
    main()
