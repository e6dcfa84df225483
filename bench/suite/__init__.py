"""The GPU suite's parts (bench/gpu_suite.py is its command): sizes per mode, random models, measurement, the
cases, and the report."""
