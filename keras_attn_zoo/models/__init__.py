"""Models built from the zoo's layers. Importing this package registers them with Keras
(`keras.saving.load_model` finds `keras_attn_zoo>Seq2Seq` and `keras_attn_zoo>Captioner`)."""

from keras_attn_zoo.models.captioner import Captioner
from keras_attn_zoo.models.encoder_decoder import EncoderDecoder
from keras_attn_zoo.models.seq2seq import Seq2Seq

__all__ = ["Captioner", "EncoderDecoder", "Seq2Seq"]
