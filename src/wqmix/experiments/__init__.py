"""Experiments across runs: aggregate results over seeds and plot learning curves.

`wqmix.experiments.results` reads run directories (written by `wqmix train`) and reports
mean, median and interquartile mean (IQM) with stratified-bootstrap confidence intervals, as
rliable recommends (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021). Only NumPy is needed; plotting imports matplotlib on first use.
"""

from wqmix.experiments.results import (
    ResultRow,
    Run,
    RunDirError,
    aggregate,
    format_markdown,
    iqm,
    load_runs,
    plot_curves,
    results_table,
    stratified_bootstrap_ci,
    write_csv,
)

__all__ = [
    "ResultRow",
    "Run",
    "RunDirError",
    "aggregate",
    "format_markdown",
    "iqm",
    "load_runs",
    "plot_curves",
    "results_table",
    "stratified_bootstrap_ci",
    "write_csv",
]
