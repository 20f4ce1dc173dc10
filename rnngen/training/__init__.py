"""Training: the loop and its schedules (epochs or a time budget), data-parallel training, the
training log.

May import: rnngen.core, rnngen.text, rnngen.reading, rnngen.errors, and modules of this package.
"""
