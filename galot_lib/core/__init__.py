"""Cross-cutting helpers, one per job: atomic writes, stable hashes, finiteness checks, the device
choice, storage roots from the environment and named seed purposes. Every other layer uses these
and nothing here knows about active learning or diffusion."""
