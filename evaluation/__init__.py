"""Measuring settings with numbers: commands that run the shipped graphs on a running ComfyUI server through its
HTTP API (the user's models and GPU) and report the metrics of I2V Video Metrics."""
