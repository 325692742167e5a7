"""`torch-cp-merge`: PyTorch context parallelism's merger of partial attention states,
`torch.distributed.tensor.experimental._context_parallel._attention._SDPAMerger` (pure PyTorch,
no process group needed), the code ring attention uses to combine each rank's (output, lse):

    out ← out − sigmoid(lse_n − lse)·(out − out_n),   lse ← lse − logsigmoid(lse − lse_n)

Border translations: the N states are stepped in order (`step(out_n, lse_n, partial=False)`,
`results()`); the LSEs are handed over as float32 below float64 (how kernels return them);
`convert_to_f32` is the library's default True below float64 and False at float64 (its option
`_cp_options.convert_to_f32`; True would merge float64 states in float32). A private module: its
import path is checked by availability, never assumed.
torch is imported inside functions only.
"""
from __future__ import annotations

from attnconf.adapters.base import Adapter, Capabilities
from attnconf.adapters.pytorch import TorchArrays
from attnconf.dtypes import DTYPE_NAMES

_MODULE = "torch.distributed.tensor.experimental._context_parallel._attention"


class TorchCpMergeAdapter(TorchArrays, Adapter):
    name = "torch-cp-merge"
    description = "PyTorch context parallelism's _SDPAMerger (ring attention's state merge)"
    capabilities = Capabilities(operations=("merge_attention_states",), dtypes=DTYPE_NAMES)

    @classmethod
    def availability(cls):
        available, reason = super().availability()
        if not available:
            return available, reason
        import importlib

        try:
            getattr(importlib.import_module(_MODULE), "_SDPAMerger")
        except Exception as exc:
            return False, f"{_MODULE}._SDPAMerger is not importable: {type(exc).__name__}: {exc}"
        return True, ""

    def merge_attention_states(self, outputs, lses):
        import importlib

        import torch

        merger_cls = importlib.import_module(_MODULE)._SDPAMerger
        wide = outputs.dtype == torch.float64
        lses = lses.to(torch.float64 if wide else torch.float32)
        merger = merger_cls(convert_to_f32=not wide, seq_dim=2)
        with torch.no_grad():
            for n in range(outputs.shape[0]):
                merger.step(outputs[n], lses[n], False)
            return merger.results()


ADAPTERS = (TorchCpMergeAdapter,)
