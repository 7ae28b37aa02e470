"""fastconv-bench: every kernel against the best peer on this machine, in one run.

One section per kernel family (gemm.py, conv.py, conv_transpose.py, roi.py, sampling.py, norm.py,
pool.py) and one for whole networks (models.py): each turns entries of layers.json into Cases;
harness.py times them interleaved and prints one table, and __main__.py is the command.
"""
