"""The named alternatives and option names that the registry entries (attnconf.operations), the
reference and the adapters share: spec/index.json's names, in one neutral module that imports
nothing, so the reference never imports a registry entry back (docs/architecture.md, layers).
Registry entries re-export the ones they own under their historical names."""
from __future__ import annotations

ALIBI_MODES = ("causal", "symmetric", "row_constant")       # alibi.bias, alibi.bias.symmetric, alibi.bias.row_constant
ALIBI_ALIGNMENTS = ("top_left", "bottom_right")              # alibi.align.*
POSITION_ID_SCHEMES = ("arange", "past", "roberta", "opt")   # posids.ids.*
RELATIVE_INDEX_ALIGNMENTS = ("top_left", "bottom_right")     # relpos.index.align.*
ROPE_TYPES = ("linear", "dynamic", "yarn", "llama3")         # rope.scaling.*: HF transformers' rope_type names
# sdpa.opt.*: the kernel options, in the adapter signature's order (chunk: sdpa.opt.chunk); those that travel as case
# inputs (sinks and alibi_slopes in the case dtype, the others as integers)
SDPA_OPTION_NAMES = ("window", "softcap", "sinks", "alibi_slopes", "query_offset", "key_lengths", "query_lengths",
                     "chunk")
SDPA_OPTION_INPUTS = ("sinks", "alibi_slopes", "query_offset", "key_lengths", "query_lengths")
SDPA_INDEX_INPUTS = ("query_offset", "key_lengths", "query_lengths")
