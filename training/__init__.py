"""The trainer: `python training/train_adapter.py` writes the I2V-Adapter and look-back files the nodes load.

Host-free (torch, diffusers, transformers, accelerate, PyAV): it never imports ComfyUI.
"""
