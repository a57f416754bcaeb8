"""Attention layers and the attention decoder."""

from keras_attn_zoo.layers.attention_decoder import AttentionDecoder
from keras_attn_zoo.layers.bahdanau_attention import BahdanauAttention
from keras_attn_zoo.layers.base_attention import BaseAttention, masked_softmax
from keras_attn_zoo.layers.luong_attention import LuongAttention

__all__ = ["AttentionDecoder", "BahdanauAttention", "BaseAttention", "LuongAttention", "masked_softmax"]
