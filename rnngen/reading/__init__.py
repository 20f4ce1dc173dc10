"""Reading a text with a trained model: scoring, the neural cache, dynamic evaluation, the
sampler chain, generation and tuning the adaptation settings.

May import: rnngen.core, rnngen.text, rnngen.errors, and modules of this package.
"""
