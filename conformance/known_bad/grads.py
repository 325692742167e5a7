"""Gradient bugs in sdpa_vjp."""
from __future__ import annotations

import numpy as np

from ._base import ZooAdapter


class GradDkMissingScale(ZooAdapter):
    """dk forgets the softmax scale (dq has it): the backward pass of a kernel that folds the
    scale into q in the forward. Bug class: gradient bugs."""

    name = "known-bad/grad-dk-missing-scale"
    bug_class = "gradient: dk missing scale"

    def grad_dq_dk(self, ds, q, k, s):
        dq, dk = super().grad_dq_dk(ds, q, k, s)
        return dq, dk / s


class GradDvTransposed(ZooAdapter):
    """dv = P @ dO instead of Pᵀ @ dO: right shape only when L == S (and wrong values), a shape
    error otherwise. Bug class: gradient bugs (dv transposed)."""

    name = "known-bad/grad-dv-transposed"
    bug_class = "gradient: dv transposed"

    def grad_dv(self, p, g):
        return np.matmul(p, g)


class GradSoftmaxJacobianNoRowSum(ZooAdapter):
    """dS = P * dP, dropping the `- rowsum(P * dP)` term of the softmax Jacobian. Bug class:
    gradient bugs (dq and dk wrong, dv right)."""

    name = "known-bad/grad-softmax-jacobian"
    bug_class = "gradient: softmax Jacobian"

    def grad_ds(self, p, dp):
        return p * dp
