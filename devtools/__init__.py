"""Local services and process measurements shared by the tests and the benchmarks (not part of
the installed package): an S3 server, an MLflow server and Ray heads on free ports of 127.0.0.1,
and the memory of a process tree."""
