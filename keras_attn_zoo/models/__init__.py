"""Models built from the zoo's layers. Importing this package registers them with Keras
(`keras.saving.load_model` finds `keras_attn_zoo>Seq2Seq`)."""

from keras_attn_zoo.models.seq2seq import Seq2Seq

__all__ = ["Seq2Seq"]
