"""Host-free math shared by the ComfyUI nodes and the trainer (torch only, no ComfyUI imports)."""
