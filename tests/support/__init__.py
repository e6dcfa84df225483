"""Helpers for the tests: finding ComfyUI, random-weight models in real layouts, a ComfyUI server, workflows."""
