"""API-format graphs built node by node, as a user wires them, for the tests that run many small variants of one
graph on a server (the composition matrix)."""
from dataclasses import dataclass, field

Output = list  # [node id, output index], as /prompt takes it


@dataclass
class Graph:
    nodes: dict = field(default_factory=dict)

    def add(self, class_type: str, **inputs) -> str:
        node = str(len(self.nodes) + 1)
        self.nodes[node] = {"class_type": class_type, "inputs": inputs}
        return node

    def out(self, class_type: str, index: int = 0, **inputs) -> Output:
        """Add a node and return its output `index`."""
        return [self.add(class_type, **inputs), index]

    def save_latent(self, samples: Output, name: str) -> str:
        return self.add("SaveLatent", samples=samples, filename_prefix=f"matrix/{name}")
