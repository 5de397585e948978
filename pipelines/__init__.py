"""Ray entrypoints: one module per job, each ``main(argv)`` shaped alike
(parse config -> set up Ray, MLflow, storage -> run -> report)."""
