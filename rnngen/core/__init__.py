"""The maths: array backend, layers, recurrent cells, the sequence model, the class softmax and
the optimisers. Pure functions over arrays (forward/backward pairs); nothing here reads files,
knows about text or prints.

May import: numpy, rnngen.errors, and modules of this package.
"""
