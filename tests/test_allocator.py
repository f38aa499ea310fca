"""minivgg.nn.allocator: with glibc told to keep freed memory, Kernel-SHAP reuses it instead of faulting in pages."""

import platform
import subprocess
import sys

import pytest

# A child process (malloc's settings last as long as the process): Kernel-SHAP on a bundled sample, once to
# warm up and once counted; print whether malloc agreed and the page faults of the second run.
CHILD = """
import resource, sys
from minivgg.cli.common import load
from minivgg.deploy.bundled import BUNDLED_SAMPLES
from minivgg.explain import KernelSHAP
from minivgg.nn.allocator import keep_freed_memory
agreed = keep_freed_memory() if sys.argv[1] == "keep" else None
model = load(None)
x = model.read(sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0])
shap = KernelSHAP(model, budget=200, tolerance=0)
list(shap.rounds(x))
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
list(shap.rounds(x))
print(agreed, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode):
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    agreed, count = done.stdout.split()
    return agreed, int(count)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere the module does nothing")
def test_kept_memory_is_reused_without_page_faults():
    agreed, kept = faults("keep")
    _, default = faults("default")
    assert agreed == "True"
    # By default every call's scratch arrays are fresh pages (about 34,000 faults of 4 kB in 200 calls); kept,
    # the same blocks come back.
    assert kept < default / 10, (kept, default)


def test_the_command_keeps_freed_memory_and_a_library_import_does_not():
    # A program that imports minivgg keeps malloc's defaults; only the minivgg command changes them. The child
    # counts every lookup of mallopt through ctypes, from before the first import of minivgg.
    code = ("import ctypes, unittest.mock as mock; calls = []\n"
            "class Spy(ctypes.CDLL):\n"
            "    def __getattr__(self, name):\n"
            "        calls.append(name) if name == 'mallopt' else None\n"
            "        return super().__getattr__(name)\n"
            "ctypes.CDLL = Spy\n"
            "import minivgg, minivgg.cli, minivgg.deploy, minivgg.explain\n"
            "imported = len(calls)\n"
            "mock.patch.object(minivgg.cli, 'main', lambda: 0).start()\n"
            "minivgg.cli.command()\n"
            "print(imported, len(calls))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", "1"], done.stdout + done.stderr
