"""handdiff: two-stage diffusion for pose-conditioned human images with correct hands.

The library (data formats, annotators, datasets, models, inference, metrics,
tracking helpers) knows nothing of Ray clusters, ranks or devices inside models;
the Ray entrypoints that compose it live in ``pipelines/``.
"""

__version__ = "0.1.0"
