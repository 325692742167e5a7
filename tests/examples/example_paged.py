"""A bare paged-attention function in NumPy, checked with
`attnconf run --sdpa-paged example_paged:sdpa_paged --framework numpy` (docs/plugins.md).

Gathers each sequence's keys from its pages through the block table, places the L queries at the
cache's last positions (p_i = K_b − L + i) and returns (output, lse). It takes no window, softcap,
chunk, sinks or ALiBi keyword, so the cases that set them are skipped as unsupported.
"""
import numpy as np


def sdpa_paged(query, key_pages, value_pages, block_table, cache_lengths, *, is_causal=False, scale=None,
               enable_gqa=False):
    B, H, L, E = query.shape
    P, Hkv = key_pages.shape[1], key_pages.shape[2]
    ct = np.float64 if query.dtype == np.float64 else np.float32       # compute dtype
    scale = 1.0 / np.sqrt(E) if scale is None else scale
    out = np.zeros((B, H, L, value_pages.shape[-1]), ct)
    lse = np.full((B, H, L), -np.inf, ct)
    for b in range(B):
        n = int(cache_lengths[b])
        if n == 0:
            continue                                                   # no key: output 0, lse −inf
        t = np.arange(n)
        pages = block_table[b, t // P]
        k = key_pages[pages, t % P].astype(ct).transpose(1, 0, 2)     # (Hkv, n, E)
        v = value_pages[pages, t % P].astype(ct).transpose(1, 0, 2)
        k, v = np.repeat(k, H // Hkv, axis=0), np.repeat(v, H // Hkv, axis=0)
        s = query[b].astype(ct) @ k.transpose(0, 2, 1) * ct(scale)   # (H, L, n)
        if is_causal:
            pos = n - L + np.arange(L)
            s = np.where(t[None, :] <= pos[:, None], s, -np.inf)
        m = s.max(axis=-1, keepdims=True)
        live = np.isfinite(m)
        e = np.exp(s - np.where(live, m, 0))
        z = e.sum(axis=-1, keepdims=True)
        out[b] = np.where(live, (e / np.where(live, z, 1)) @ v, 0)
        lse[b] = np.where(live, m + np.log(np.where(live, z, 1)), -np.inf)[..., 0]
    return out.astype(query.dtype), lse.astype(ct)      # lse float32 below float64 (spec paged.dtype)
