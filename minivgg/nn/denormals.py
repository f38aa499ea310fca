"""Subnormal floats are flushed to zero while minivgg computes.

A float32 below 1.2e-38 in magnitude is *subnormal*: it has lost the implicit leading 1
of its mantissa, and x86 processors handle it in a slow microcode path, up to 100 times
slower than a normal number. Gradients decay into that range whenever the network is
confident: once the loss of a batch is about 1e-30, every gradient in the backward pass is
subnormal. Measured on the paper's VGG8 at batch 1: a training step took 130 ms with
normal gradients and 4-7 s with subnormal ones, and it happens a few steps into fitting
a single image. (PyTorch's and TensorFlow's CPU kernels flush them too.)

Two bits of the SSE control register MXCSR fix it: FTZ ("flush to zero") writes 0
instead of a subnormal result, DAZ ("denormals are zero") reads subnormal inputs as 0.
The register belongs to each thread, so:

* minivgg's own pool threads (:mod:`minivgg.nn.threads`) set both bits when they start;
* a caller's thread has them set only *during* a minivgg call (:func:`flushed`): the
  network's forward and backward passes and work run inline by ``parallel_for``. The
  rest of the caller's program keeps IEEE arithmetic.

Off x86 (e.g. ARM) this module does nothing.
"""

import contextlib
import platform

X86 = platform.machine().lower() in ("x86_64", "amd64")
FTZ_DAZ = 0x8040                # MXCSR bit 15 (FTZ) and bit 6 (DAZ)

if X86:
    import numba
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def _mxcsr_call(builder, name, slot):
        # llvm.x86.sse.stmxcsr / ldmxcsr store / load the register through a pointer.
        i8_ptr = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8_ptr]), name)
        builder.call(fn, [builder.bitcast(slot, i8_ptr)])

    @intrinsic
    def _stmxcsr(typingctx):
        def codegen(context, builder, signature, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
            return builder.load(slot)
        return types.uint32(), codegen

    @intrinsic
    def _ldmxcsr(typingctx, value):
        def codegen(context, builder, signature, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            builder.store(args[0], slot)
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
            return context.get_dummy_value()
        return types.void(types.uint32), codegen

    @numba.njit(cache=True, nogil=True)
    def get_mxcsr():
        """The calling thread's MXCSR register."""
        return _stmxcsr()

    @numba.njit(cache=True, nogil=True)
    def set_mxcsr(value):
        """Load ``value`` (uint32) into the calling thread's MXCSR register."""
        _ldmxcsr(numba.uint32(value))


def flush_in_this_thread():
    """Set FTZ and DAZ for good in the calling thread (minivgg's pool threads call this when they start)."""
    if X86:
        set_mxcsr(get_mxcsr() | FTZ_DAZ)


@contextlib.contextmanager
def flushed():
    """Flush subnormals in the calling thread inside the ``with`` block; the register is restored after it."""
    if not X86:
        yield
        return
    before = get_mxcsr()
    set_mxcsr(before | FTZ_DAZ)
    try:
        yield
    finally:
        set_mxcsr(before)
