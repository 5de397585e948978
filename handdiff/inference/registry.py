"""Every generation method by name: ours and the oracle (``handdiff.inference.generators``) and
the diffusers baselines (``handdiff.inference.baselines``), which build on the generators' interface."""

from __future__ import annotations

from handdiff.inference import baselines as b
from handdiff.inference.generators import Generator, HandDiffGenerator, OracleGenerator


def generators() -> dict[str, type[Generator]]:
    """Every method by name: ours, the oracle and the diffusers baselines."""
    methods = (
        HandDiffGenerator,
        OracleGenerator,
        b.SD15Generator,
        b.ControlNetOpenPoseGenerator,
        b.T2IAdapterOpenPoseGenerator,
        b.HumanSDGenerator,
        b.HandRefinerGenerator,
    )
    return {g.method: g for g in methods}


def make_generator(method: str, **options) -> Generator:
    """The generator of ``method`` built from its ``options`` (``ValueError`` naming the known methods)."""
    known = generators()
    if method not in known:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(known)}")
    return known[method](**options)
