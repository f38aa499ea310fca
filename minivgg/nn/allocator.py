"""Keep freed memory for the next call: glibc's malloc told not to hand it back to the system.

Every convolution allocates its scratch arrays (the Winograd planes, a few MB each) and
frees them when it returns. By default glibc's malloc gives a freed block of more than
128 kB, or whatever it has come to think large, back to the operating system (``munmap``,
or a trim of the heap's top), and the next call's ``np.empty`` gets fresh pages, each of which
the kernel must fault in and zero on first touch. Kernel-SHAP on the bundled model calls the
network 60 times an image: 140,000 page faults and 0.4 s of system time in a run of 2 s.

Two of malloc's settings (``mallopt``) stop it, for blocks up to :data:`MMAP_THRESHOLD`:

* ``M_MMAP_THRESHOLD``: blocks below it come from the heap, not from a mapping of their own;
* ``M_TRIM_THRESHOLD``: free memory at the heap's top is kept up to this much.

Either one alone is worse than neither: setting one turns off the rule by which malloc
raises the mmap threshold as it goes (measured: 1.1-1.4 million faults, twice the time).
With both, a second image's run makes no page faults and is 15-20% faster. The price: memory
once used stays with the process (up to 1 GB of it free at the heap's top) instead of going
back to the system, so a process's resident size stays near its peak. The ``minivgg``
command's process asks for it (:func:`minivgg.cli.command`: a prediction, an explanation, a
training run, the terminal app), whose peak is the memory it needs anyway; ``import minivgg``
does not: a program that uses minivgg as a library chooses for itself (glibc reads the same
settings from the environment variables ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``).
Dask workers (``--dask``) are left as they are, on purpose: Dask's nanny sets
``MALLOC_TRIM_THRESHOLD_`` low for them, because its memory limits pause and restart a worker
by its resident size, which kept memory would inflate.

Elsewhere (macOS, musl) there is no ``mallopt``, and this module does nothing.
"""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD = 32 << 20      # the largest glibc accepts on 64-bit systems (half its heap size)
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory():
    """Tell glibc's malloc to keep freed blocks of up to 32 MB for reuse; True when it agreed.

    The mmap threshold goes first, as the one setting glibc may refuse (a value above half its
    heap size); refused, it leaves malloc as it was, and the trim threshold is not set alone.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt       # the C library the process runs on (not a new load of one)
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS, musl); no CDLL(None) (Windows)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
