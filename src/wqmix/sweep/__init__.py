"""Sweeps: grids and random searches over any config field, every trial an ordinary run directory,
run on Ray (a local cluster by default, or an existing one by address). See docs/sweeps.md.

`spec` reads and validates a spec (no Ray needed), `manifest` keeps `sweep.json`, `runner` runs
the trials on Ray."""

from wqmix.sweep.spec import SweepSpec, Trial, expand, load_spec, parse_spec

__all__ = ["SweepSpec", "Trial", "expand", "load_spec", "parse_spec"]
