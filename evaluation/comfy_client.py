"""A running ComfyUI server, driven over its HTTP API: what it offers (/object_info) and graphs queued and waited
for (/prompt, /history)."""
import json
import time
import urllib.error
import urllib.request
import uuid


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


class ComfyClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, route: str):
        with urllib.request.urlopen(f"{self.url}{route}", timeout=60) as response:
            return json.loads(response.read())

    def object_info(self) -> dict:
        return self.get("/object_info")

    def check_alive(self) -> None:
        """Called while a prompt runs: raise when the server is known to be gone (a server we started)."""

    def describe(self) -> str:
        """What to add to a timeout's message."""
        return self.url

    def run(self, prompt: dict, timeout: float = 1800) -> dict:
        """Queue an API-format graph, wait for it, return its history entry (with `outputs`)."""
        body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
        request = urllib.request.Request(f"{self.url}/prompt", data=body, headers={"Content-Type": "application/json"})
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
            self.check_alive()
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{self.describe()}")
