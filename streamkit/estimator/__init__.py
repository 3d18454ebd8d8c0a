"""Throughput estimator: the classic shards x batch / duration formula and a full model of the limits."""

from streamkit.estimator.model import Inputs, Limits, estimate
from streamkit.estimator.simulate import simulate

__all__ = ["Inputs", "Limits", "estimate", "simulate"]
