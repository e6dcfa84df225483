"""One module per kind of case, each with run(models, deadline, title, **arguments) -> rows, imported when its turn
comes (ComfyUI is running by then)."""
