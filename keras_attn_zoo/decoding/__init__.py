"""Search over a decoder's outputs: greedy and beam search in one compiled loop."""

from keras_attn_zoo.decoding.beam_search import beam_search, coverage_penalty, length_penalty, tile_rows

__all__ = ["beam_search", "coverage_penalty", "length_penalty", "tile_rows"]
