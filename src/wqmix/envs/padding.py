"""Agents of different shapes behind one shared agent network: each agent's observation is
flattened and zero-padded to the longest, and its action count is padded to the largest with
actions that are never available (as JaxMARL's `CTRolloutManager` pads them; the agent id stays
in the network's input, so agents of different types remain distinguishable).

Pure functions on NumPy or JAX arrays (`xp` is `numpy` or `jax.numpy`): the adapters of every
env family (jaxmarl, Jumanji, Gymnasium, SMAC's API, PettingZoo) use the same ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np


class AgentShapes(NamedTuple):
    """Each agent's own observation size and action count, in slot order."""

    names: tuple[str, ...]
    obs_sizes: tuple[int, ...]
    action_counts: tuple[int, ...]

    @property
    def obs_dim(self) -> int:
        """The padded observation size: the longest agent's."""
        return max(self.obs_sizes)

    @property
    def num_actions(self) -> int:
        """The padded action count: the largest agent's."""
        return max(self.action_counts)

    def real_actions(self) -> np.ndarray:
        """(agents, num_actions) bool: true where the action is one of the agent's own; the
        padded ones (false) are never available."""
        return np.arange(self.num_actions)[None, :] < np.asarray(self.action_counts)[:, None]

    def padded(self) -> tuple[str, ...]:
        """What padding does to these agents, one line each (empty when every agent has the same
        shapes): `check-env` prints these lines."""
        lines = []
        for what, sizes, width, how in (("observations", self.obs_sizes, self.obs_dim, "zeros"),
                                        ("actions", self.action_counts, self.num_actions,
                                         "actions that are never available")):
            short = [(name, size) for name, size in zip(self.names, sizes) if size < width]
            if short:
                agents = ", ".join(f"{name} ({size})" for name, size in short)
                lines.append(f"{what} padded to {width} with {how}: {agents}")
        return tuple(lines)


def stack_padded(rows: Sequence[Any], width: int, xp: Any = np) -> Any:
    """(agents, width) float32: each agent's array flattened, then zero-padded on the right."""
    flat = [xp.asarray(row, xp.float32).reshape(-1) for row in rows]
    if xp is np:  # on the host, once per env step: filling zeros is ~10x faster than np.pad
        out = np.zeros((len(flat), width), np.float32)
        for i, row in enumerate(flat):
            out[i, : row.shape[0]] = row
        return out
    return xp.stack([xp.pad(row, (0, width - row.shape[0])) for row in flat])


def stack_masks(masks: Sequence[Any], shapes: AgentShapes, xp: Any = np) -> Any:
    """(agents, num_actions) bool from each agent's own mask ((own actions,) bool, or None for
    "every one of its actions"); padded actions are false."""
    if xp is np:  # on the host: see stack_padded
        out = shapes.real_actions()
        for i, mask in enumerate(masks):
            if mask is not None:
                own = np.asarray(mask, bool).reshape(-1)
                out[i, : own.shape[0]] = own
        return out
    rows = []
    for mask, count in zip(masks, shapes.action_counts):
        own = xp.ones((count,), bool) if mask is None else xp.asarray(mask, bool).reshape(-1)
        rows.append(xp.pad(own, (0, shapes.num_actions - own.shape[0])))
    return xp.stack(rows)
