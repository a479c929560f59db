"""dmalint's benchmarks: `python -m bench` (bench/run.py), the trace generator (bench/generate.py),
and the older single-purpose scripts bench/parse_speed.py and bench/model_steps.py."""
