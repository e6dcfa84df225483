"""A real ComfyUI server in a subprocess, with the pack installed as a custom node, driven over HTTP."""
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

from ...evaluation.comfy_client import ComfyClient
from .comfyui import PACK_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer(ComfyClient):
    def __init__(self, comfyui: Path, base: Path, packs: tuple[Path, ...] = ()):
        """`packs`: other custom node packs to install beside ours (--base-directory loads only base's custom_nodes)."""
        self.comfyui, self.base, self.port = comfyui, base, free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.log_path = base / "comfyui.log"
        for folder, name in ((PACK_ROOT, "comfyui-i2v-adapter"), *((p, p.name) for p in packs)):
            (base / "custom_nodes" / name).symlink_to(folder, target_is_directory=True)
        self.process = None

    def __enter__(self):
        command = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--base-directory", str(self.base), "--disable-auto-launch", "--disable-metadata"]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=self.comfyui, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while True:
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"ComfyUI did not start:\n{self.log_tail()}")
                time.sleep(0.5)

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=60)
        self.log.close()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited:\n{self.log_tail()}")

    def describe(self) -> str:
        return self.log_tail()
