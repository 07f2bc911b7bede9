"""A trivial training method that exists only for the tests: adding a method is this one file plus one line
that registers it (see ``CASES`` in tests/test_methods.py; in the library, one line in ``METHODS``).

"Independent" draws its negatives as fresh samples of the base rho, with no chains: it is the degenerate
method whose model never sees its negatives move (it trains the EBM towards E(x) = log rho(x) - log p*(x)).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from ebmflow.methods import Method, Negatives
from ebmflow.samplers import ChainState, Kernel, init_state


@dataclass(kw_only=True)
class Independent(Method):
    name: ClassVar[str] = "independent"
    label: ClassVar[str] = "Independent"
    color: ClassVar[str] = "#666666"

    def init_chains(self, n: int, generator: torch.Generator) -> Tensor:
        return self.base.sample_with_log_prob(n, generator)[0]

    def starts(self, chains: Tensor, generator: torch.Generator) -> Tensor:
        return self.base.sample_with_log_prob(len(chains), generator)[0]

    def kernel(self, substeps: bool = False) -> Kernel:
        """Every step replaces each chain by a fresh draw of rho."""
        def init(position: Tensor) -> ChainState:
            return init_state(position, self.log_target)

        def step(state: ChainState, generator: torch.Generator) -> tuple[ChainState, None]:
            return init(self.base.sample_with_log_prob(len(state.position), generator)[0]), None

        return Kernel(init, step)

    def sample(self, chains: Tensor, generator: torch.Generator) -> Negatives:
        fresh = self.starts(chains, generator)
        return Negatives(fresh, fresh, {})

    def describe(self) -> dict[str, Any]:
        return {"MCMC sampler": "none (independent draws of rho)", "# MCMC steps": 0, "use only last step?": "yes",
                "starting strategy": "rho", "learning rate": self.lr}
