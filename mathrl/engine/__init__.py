"""The execution machinery, apart from the algorithm: how the models run fast on this machine.

decoder.py (the built-in decode engine), packing.py (completions packed behind their shared
prompt for the log-prob passes), attention.py (attention kernels registered with transformers)
and host.py (threads and the allocator). Imports run one way: the engine reads models.py and
types.py, and the algorithm modules read the engine, never the reverse (tests/test_layering.py).
"""
