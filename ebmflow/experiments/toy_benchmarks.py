"""8 Gaussians and Rings (paper §3.3, Figure 2, Tables 1 and 5, Appendix C.4): four methods, one EBM."""
from __future__ import annotations

import matplotlib.pyplot as plt

from .benchmarks import CHOICES as SHARED_CHOICES
from .benchmarks import BenchmarkConfig, MethodResult, density_row

__all__ = ["PROFILES", "CHOICES", "TARGETS", "PAPER_TABLE1", "PAPER_TABLE5", "figure2"]

TARGETS = ("8gaussians", "rings")
PAPER_TABLE1 = {  # median squared log-density error, paper Table 1
    "ula": {"8gaussians": 1.86, "rings": 5.39},
    "ntebm": {"8gaussians": 0.97, "rings": 0.62},
    "coopflow": {"8gaussians": 58.75, "rings": 7.78},
    "flowmc": {"8gaussians": 0.94, "rings": 0.40},
}
PAPER_TABLE5 = {  # sampler, # MCMC steps, use only last step?, lr (paper Table 5 and §C.4)
    "ula": ("ula, step (1.25e-1)^2/2", 512, "yes", 1e-2),
    "ntebm": ("mala, 75% target acceptance", 128, "yes", 1e-2),
    "coopflow": ("ula, step 5e-4", 256, "yes", 1e-3),
    "flowmc": ("flowMC, 1 global + 127 mala", 128, "subsampling by 4", 1e-3),
}
CHOICES = SHARED_CHOICES + (
    "Table 1 metric: the median over 4096 held-out samples of p* of (log p_theta - log p*)^2, p_theta normalised "
    "by a Riemann sum on a 200 x 200 grid over the plotting box ([-2.5, 2.5]^2 for 8 Gaussians, [-5, 5]^2 for Rings).",
    "flowMC-EBM: 1 i-SIR + 127 MALA steps, subsampling by 4 (64 chains x 4 states per batch of 256).",
    "The cpu profile runs 4 of the 100 epochs with 64 ULA / 32 latent MALA / 32 noiseless ULA / 1 + 31 flowMC "
    "steps per iteration; data, batch, bank, samplers and the other learning rates are the paper's.",
)
PAPER = dict(seed=0, n_data=60000, epochs=100, batch_size=256, n_persistent=8192, lr_ula=1e-2, lr_ntebm=1e-2,
             lr_coopflow=1e-3, lr_flowmc=1e-3, ula_steps=512, ula_step_size=0.125**2 / 2, ntebm_steps=128,
             ntebm_step_size=0.01, coopflow_steps=256, coopflow_step_size=5e-4, coopflow_freeze_fraction=0.04,
             flowmc_local_steps=127, flowmc_cycles=1, flowmc_keep=4, flowmc_step_size=0.01, n_particles=64,
             pretrain_steps=1024, pretrain_lr=1e-2, flow_couplings=4, flow_hidden=16, grid_size=200, n_eval=4096)
CPU = {**PAPER, "epochs": 4, "ula_steps": 64, "ntebm_steps": 32, "coopflow_steps": 32, "flowmc_local_steps": 31, "lr_ntebm": 1e-3}
PROFILES = {
    "smoke": {**CPU, "n_data": 2048, "epochs": 1, "n_persistent": 512, "ula_steps": 8, "ntebm_steps": 4,
              "coopflow_steps": 4, "flowmc_local_steps": 7, "n_particles": 16, "pretrain_steps": 32,
              "grid_size": 64, "n_eval": 512},
    "cpu": CPU,
    "paper": PAPER,
}


def figure2(results: dict[str, dict[str, MethodResult]], config: BenchmarkConfig):
    """Figure 2: the target and the four methods' normalised densities; rows 8 Gaussians and Rings."""
    fig, axes = plt.subplots(len(TARGETS), 5, figsize=(13, 5.4), layout="constrained")
    for row, target in zip(axes, TARGETS):
        density_row(list(row), results[target], config, target)
    return fig
