"""fastconv-bench: every kernel against the best peer on this machine, in one run.

Each section module (conv.py, ...) turns entries of layers.json into Cases; harness.py times
them interleaved and prints one table.
"""
