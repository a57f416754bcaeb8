"""From inputs to strings with a trained model: batching, truncation, empty inputs, bad images.

`predict_texts` serves the text models (`Seq2Seq`: translation, summarization), `predict_images`
the captioners (`Captioner`); both return `Prediction`s.
"""

import dataclasses
import logging

import numpy as np

logger = logging.getLogger("keras_attn_zoo")


@dataclasses.dataclass
class Prediction:
    """One model output.

    Attributes:
        text: the detokenized output ("" for an empty input).
        score: the search score (length-normalised log probability), None for an empty input.
        token_ids: output ids, without eos.
        tokens: output subword pieces, then "</s>" where the model ended the output.
        source_tokens: the source subword pieces the model read (after truncation).
        attention: (len(tokens), len(source_tokens)) weights, when asked for.
        truncated: True when the input was longer than the model's maximum and was cut.
        truncated_output: True when the output stopped at its length limit (`max_length`, or
            `max_length_ratio` x the source length + `max_length_offset`) instead of with an
            end the model chose: the text is cut, not finished.
        details: the model's per-token extras, when asked for and the model has any (see
            `Seq2Seq.token_details`); for a pointer-generator `{"copy": [{"token", "p_gen",
            "source_position"}, ...]}`, one entry per output token, source_position None where
            the token is not in the source.
        error: for an input that could not be read (an image that does not decode), the one
            line saying why; the prediction is then empty and the other inputs are unaffected.
        image_box: for an image, where the picture lies in the square the model saw
            (`keras_attn_zoo.images.ImageBox`), to draw attention over the original.
        grid: for an image, (rows, columns) of the encoder's feature grid: `attention` has
            rows * columns positions, row by row.
    """

    text: str
    score: float | None = None
    token_ids: list = dataclasses.field(default_factory=list)
    tokens: list = dataclasses.field(default_factory=list)
    source_tokens: list = dataclasses.field(default_factory=list)
    attention: np.ndarray | None = None
    truncated: bool = False
    truncated_output: bool = False
    details: dict = dataclasses.field(default_factory=dict)
    error: str | None = None
    image_box: object = None
    grid: tuple | None = None

    @property
    def copied(self):
        """Indices of the output tokens the copy switch mostly copied (p_gen < 0.5); [] without details."""
        return [t for t, item in enumerate(self.details.get("copy", [])) if item["p_gen"] < 0.5]

    def to_dict(self, attention=None):
        """A JSON-ready dict: output, score, truncated, truncated_output, the details, error if any.

        `attention`: None adds the weights when they were computed; True always adds their keys
        (empty for an input with none: an empty text, an image that did not load); False never.
        The keys are output_tokens and attention, with source_tokens for a text input, or for an
        image grid ([rows, columns]: attention rows are row-major over it) and image_box.
        """
        result = {
            "output": self.text,
            "score": self.score,
            "truncated": self.truncated,
            "truncated_output": self.truncated_output,
        }
        if attention or (attention is None and self.attention is not None):
            weights = np.round(self.attention, 4).tolist() if self.attention is not None else []
            if self.grid is None:
                result.update(source_tokens=self.source_tokens, output_tokens=self.tokens, attention=weights)
            else:
                result.update(output_tokens=self.tokens, attention=weights, grid=list(self.grid))
                result["image_box"] = dataclasses.asdict(self.image_box) if self.image_box is not None else None
        result.update(self.details)
        if self.error is not None:
            result["error"] = self.error
        return result


def predict_texts(
    model, texts, beam_size=None, batch_size=64, return_attention=False, progress=None, return_details=False,
    **search_options,
):
    """Translate (or summarize) a list of strings with a model that has tokenizers attached.

    Inputs are sorted by length and batched; empty or whitespace-only inputs give an empty
    output without running the model; inputs longer than `model.max_source_length` subword
    pieces are truncated with a warning. Output order is the input order.

    Args:
        model: a `Seq2Seq` with `attach_tokenizers` done.
        texts: a list of str.
        beam_size: 1 for greedy search; default the model's (`search_defaults`), else 1.
        batch_size: inputs per search call.
        return_attention: fill `Prediction.attention`.
        return_details: fill `Prediction.details` with the model's per-token extras (p_gen and
            copy positions of a pointer-generator; one teacher-forced pass per batch).
        progress: None, or a function called with the number of inputs done: once for the empty
            inputs (if any), then after each batch (a progress bar's `update`).
        **search_options: passed to `Seq2Seq.generate` (alpha, beta, min_length,
            no_repeat_ngram_size, max_length, max_length_ratio, max_length_offset, and
            jit_compile: XLA, worth it for many batches; see `Seq2Seq.generate`).

    Returns:
        a list of `Prediction`, one per input.
    """
    if model.source_tokenizer is None:
        raise ValueError("This model has no tokenizers attached; call model.attach_tokenizers(...) first.")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("Received: texts that are not a list of str; expected a list of str.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Received: batch_size={batch_size!r}; expected an integer >= 1.")
    results = [Prediction(text="") for _ in texts]
    todo = [i for i, text in enumerate(texts) if text.strip()]
    if progress is not None and len(todo) < len(texts):
        progress(len(texts) - len(todo))
    if not todo:
        return results
    source_ids = model.source_tokenizer.encode([texts[i].strip() for i in todo])
    limit = model.max_source_length
    cut = [len(ids) > limit for ids in source_ids]
    if any(cut):
        logger.warning(
            "%d input(s) longer than the model's maximum of %d subword pieces were truncated.", sum(cut), limit
        )
    source_ids = [ids[:limit] for ids in source_ids]
    order = sorted(range(len(todo)), key=lambda j: len(source_ids[j]))
    target_tokenizer = model.target_tokenizer
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(1, max(len(source_ids[j]) for j in chunk))
        batch = np.zeros((len(chunk), width), dtype="int32")
        for row, j in enumerate(chunk):
            batch[row, : len(source_ids[j])] = source_ids[j]
        out = model.generate(batch, beam_size=beam_size, **search_options)
        details = model.token_details(batch, out["token_ids"]) if return_details else {}
        for row, j in enumerate(chunk):
            length = int(out["lengths"][row])
            ids = [int(i) for i in out["token_ids"][row][:length]]
            truncated_output = bool(out["truncated"][row])
            prediction = results[todo[j]]
            prediction.text = target_tokenizer.decode([ids])[0]
            prediction.score = float(out["scores"][row])
            prediction.token_ids = ids
            prediction.truncated = cut[j]
            prediction.truncated_output = truncated_output
            if "p_gen" in details:
                pieces = target_tokenizer.id_to_piece(ids)
                prediction.details = {"copy": [
                    {
                        "token": piece,
                        "p_gen": round(float(details["p_gen"][row, t]), 4),
                        "source_position": int(details["copied_from"][row, t]) if details["copied_from"][row, t] >= 0 else None,
                    }
                    for t, piece in enumerate(pieces)
                ]}
            if return_attention:  # an output the model ended also shows its eos step
                steps = length + (0 if truncated_output else 1)
                prediction.tokens = target_tokenizer.id_to_piece(ids) + ([] if truncated_output else ["</s>"])
                prediction.source_tokens = model.source_tokenizer.id_to_piece(source_ids[j])
                prediction.attention = np.asarray(out["weights"][row][:steps, : len(source_ids[j])])
        if progress is not None:
            progress(len(chunk))
    return results


def predict_images(
    model, images, beam_size=None, batch_size=32, return_attention=False, progress=None, **search_options
):
    """Caption images with a `Captioner` that has its tokenizer attached.

    Each image is decoded and fitted into the model's square (`keras_attn_zoo.images.load_image`:
    aspect ratio kept, transparency onto white, huge images refused before decoding). An image
    that cannot be read gives a `Prediction` with `text=""` and `error` set to one line naming
    it (nothing is logged: the caller reports it); the others are captioned as usual. Output
    order is the input order.

    Args:
        model: a `Captioner` with `attach_tokenizer` done.
        images: a list of paths, PIL images or uint8 arrays (H, W), (H, W, 3) or (H, W, 4).
        beam_size: 1 for greedy search; default the model's (`search_defaults`), else 1.
        batch_size: images per encoder and search call.
        return_attention: fill `Prediction.attention` ((steps, H·W) over the encoder's grid,
            row-major; `Prediction.grid` is (H, W)) and `Prediction.tokens`.
        progress: None, or a function called with the number of images done after each batch.
        **search_options: passed to `Captioner.generate`.

    Returns:
        a list of `Prediction`, one per image.
    """
    from keras_attn_zoo.images import load_images

    if model.target_tokenizer is None:
        raise ValueError("This model has no tokenizer attached; call model.attach_tokenizer(...) first.")
    if isinstance(images, (str, bytes)) or not hasattr(images, "__len__"):
        raise TypeError("Received: images that are not a list; expected a list of paths, PIL images or arrays.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Received: batch_size={batch_size!r}; expected an integer >= 1.")
    grid = (model.feature_grid, model.feature_grid)
    results = [Prediction(text="", grid=grid) for _ in images]
    tokenizer = model.target_tokenizer
    for start in range(0, len(images), batch_size):
        chunk = list(images[start : start + batch_size])
        loaded = load_images(chunk, size=model.image_size)
        for position, error in loaded.errors:
            results[start + position].error = str(error)
        if len(loaded.index):
            features = model.encode_images(loaded.pixels, batch_size=batch_size)
            out = model.generate(features, beam_size=beam_size, **search_options)
            for row, position in enumerate(loaded.index):
                length = int(out["lengths"][row])
                ids = [int(i) for i in out["token_ids"][row][:length]]
                truncated_output = bool(out["truncated"][row])
                prediction = results[start + position]
                prediction.text = tokenizer.decode([ids])[0]
                prediction.score = float(out["scores"][row])
                prediction.token_ids = ids
                prediction.truncated_output = truncated_output
                prediction.image_box = loaded.boxes[row]
                if return_attention:
                    steps = length + (0 if truncated_output else 1)
                    prediction.tokens = tokenizer.id_to_piece(ids) + ([] if truncated_output else ["</s>"])
                    prediction.attention = np.asarray(out["weights"][row][:steps])
        if progress is not None:
            progress(len(chunk))
    return results
