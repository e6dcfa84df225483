"""A real ComfyUI server in a subprocess, with the pack installed as a custom node, driven over HTTP."""
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from .comfyui import PACK_ROOT


class PromptRejected(Exception):
    """/prompt refused the graph (validation); `errors` is ComfyUI's answer."""

    def __init__(self, errors: dict):
        super().__init__(json.dumps(errors, indent=1))
        self.errors = errors


class ExecutionFailed(Exception):
    """A node raised while the graph ran; the message is ComfyUI's execution_error, `exception_type` the error's
    type as ComfyUI's error dialog names it."""

    def __init__(self, message: str, exception_type: str | None = None):
        super().__init__(message)
        self.exception_type = exception_type


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, comfyui: Path, base: Path, packs: tuple[Path, ...] = ()):
        """`packs`: other custom node packs to install beside ours (--base-directory loads only base's custom_nodes)."""
        self.comfyui, self.base, self.port = comfyui, base, free_port()
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

    def get(self, route: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{route}", timeout=60) as response:
            return json.loads(response.read())

    def object_info(self) -> dict:
        return self.get("/object_info")

    def run(self, prompt: dict, timeout: float = 1800) -> dict:
        """Queue an API-format graph, wait for it, return its history entry (with `outputs`)."""
        body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/prompt", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                prompt_id = json.loads(response.read())["prompt_id"]
        except urllib.error.HTTPError as e:
            raise PromptRejected(json.loads(e.read())) from None
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry["status"].get("completed") is not None:
                if entry["status"]["status_str"] == "error":
                    errors = [m[1] for m in entry["status"]["messages"] if m[0] == "execution_error"]
                    if not errors:
                        raise ExecutionFailed(json.dumps(entry["status"]))
                    raise ExecutionFailed(errors[0]["exception_message"], errors[0]["exception_type"])
                return entry
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited:\n{self.log_tail()}")
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{self.log_tail()}")
