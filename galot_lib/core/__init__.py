"""Cross-cutting helpers, one per job: atomic writes and safe reads of saved states (``io``), stable hashes
(``hashing``), finiteness checks (``checks``), the device choice (``device``), storage roots from the environment
(``paths``), named seed purposes (``seeds``), the timing ledger (``timing``), run claims across processes
(``claims``), the image-grid figure (``figures``) and progress bars that become one final line in headless runs
(``progress``). Every other layer uses these and nothing here knows about active learning or diffusion."""
