"""oneDNN's kernel scratch memory on CPUs: the rules by kernel family, ISA and threads.

:mod:`~cnnlab.memory.onednn.workspace` holds the rules (convolution, batch norm)
and :class:`CpuKernels` (which ISA and how many threads to predict for);
:mod:`~cnnlab.memory.onednn.threads` how oneDNN splits work over threads.
"""

from cnnlab.memory.onednn.workspace import CpuKernels

__all__ = ["CpuKernels"]
