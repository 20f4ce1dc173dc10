"""Text: reading input files, tokenizing and detokenizing (spacing, line breaks), page layout,
the vocabulary, encoded corpora and batching of token ids.

May import: numpy, rnngen.errors, and modules of this package.
"""
