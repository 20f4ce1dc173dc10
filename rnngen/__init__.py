"""rnngen: train a recurrent neural network language model on a book and generate text from it."""

__version__ = "0.1.0"
