"""Attention layers and the attention decoder. Importing this package registers every layer with Keras
(`keras.saving.load_model` finds `keras_attn_zoo>BahdanauAttention`, ...)."""

from keras_attn_zoo.layers.attention_decoder import AttentionDecoder
from keras_attn_zoo.layers.bahdanau_attention import BahdanauAttention
from keras_attn_zoo.layers.base_attention import BaseAttention, masked_softmax
from keras_attn_zoo.layers.gru import GRU
from keras_attn_zoo.layers.luong_attention import LuongAttention
from keras_attn_zoo.layers.pointer_generator import PointerGenerator
from keras_attn_zoo.layers.real_positions import OutputProjection
from keras_attn_zoo.layers.tied_embedding import TiedEmbedding

__all__ = [
    "AttentionDecoder",
    "BahdanauAttention",
    "BaseAttention",
    "GRU",
    "LuongAttention",
    "OutputProjection",
    "PointerGenerator",
    "TiedEmbedding",
    "masked_softmax",
]
