"""Files: model, corpus and checkpoint files (.npz, written atomically, read with
allow_pickle=False and validated before use).

May import: rnngen.core, rnngen.text, rnngen.reading, rnngen.training, rnngen.errors, and
modules of this package.
"""
