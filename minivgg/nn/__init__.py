"""The network and its kernels: VGG8, its layers, each kernel's forward pass beside its backward pass, Adam.

Kernels (numba): :mod:`.conv` (and :mod:`.winograd`), :mod:`.pool`, :mod:`.activation`,
:mod:`.dense`, :mod:`.dropout`, :mod:`.loss`; their wiring: :mod:`.layers`; the network:
:mod:`.model`; training: :mod:`.optim`; checking: :mod:`.gradcheck`; how they compute:
:mod:`.threads`, :mod:`.denormals`, :mod:`.compiled`.
"""

from minivgg.nn.compiled import ensure_cache_folder

ensure_cache_folder()        # before any kernel module declares a cached kernel (see minivgg.nn.compiled)
