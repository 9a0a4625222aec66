"""Pictures of one greedy episode (`wqmix eval RUN_DIR --render FILE.png|FILE.gif`).

`play_greedy_episode` plays one episode of a JAX environment with the greedy (epsilon = 0)
policy, compiled, and keeps every env state; `render_episode` draws the frames as a PNG strip
(a grid of up to `MAX_STRIP_FRAMES` evenly spaced frames) or as an animated GIF (every frame).

Drawers exist for predator-prey (grid, agents numbered by id, prey as black squares), SMAX
(units as circles sized by health, allies blue, enemies red) and MPE (agents and landmarks).
matplotlib (Agg canvas, no pyplot) and, for GIFs, Pillow are imported on first use only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from wqmix import action
from wqmix.envs.base import HostEnvironment, TimeStep

MAX_STRIP_FRAMES = 16
"""A PNG strip shows at most this many frames, evenly spaced over the episode (first and last included)."""
GIF_FRAME_MS = 250
"""Display time of one GIF frame."""
RENDERABLE = "rendering is available for predator-prey, smax and mpe-spread"


class Frame(NamedTuple):
    """The env after some number of steps t (the frame's index): `actions` (agents,) led here from
    frame t - 1 (None for the reset frame)."""

    env_state: Any
    timestep: TimeStep
    actions: np.ndarray | None


# ---------------------------------------------------------------------------------------------- playing


def _env_kind(env: Any) -> str:
    """"predator-prey", "smax" or "mpe"; ValueError for anything else."""
    if isinstance(env, HostEnvironment):
        raise ValueError(f"rendering needs a JAX environment; {type(env).__name__} steps on the host "
                         "(PettingZoo) and keeps no env state to draw")
    from wqmix.envs.predator_prey import PredatorPrey  # imported here: imports JAX; rendering other envs needs none

    if isinstance(env, PredatorPrey):
        return "predator-prey"
    kind = getattr(env, "kind", None)
    if type(env).__name__ == "JaxMarlEnv" and kind in ("smax", "mpe"):
        return kind
    raise ValueError(f"{RENDERABLE}; not for {type(env).__name__}")


def check_renderable(env: Any) -> None:
    """Raise ValueError unless `render_episode` can draw episodes of `env`."""
    _env_kind(env)


def _tree_index(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda x: x[i], tree)


def play_greedy_episode(trainer: Any, agent_params: Any, key: jax.Array) -> list[Frame]:
    """One greedy (epsilon = 0) episode of `trainer.env` with agent parameters `agent_params`
    (one seed's, no leading seed axis). Returns the frames of the reset and of every step up to
    the one that ended the episode: episode length + 1 frames."""
    env = trainer.env
    if isinstance(env, HostEnvironment):
        _env_kind(env)  # raises
    spec, networks = trainer.spec, trainer.networks

    def play(params, key):
        reset_key, key = jax.random.split(key)
        env_state, timestep = env.reset(reset_key)
        hidden = jnp.zeros((1, spec.num_agents, networks.agent.hidden))
        prev_actions = jnp.full((spec.num_agents,), -1, jnp.int32)

        def step(carry, step_key):
            env_state, timestep, hidden, prev_actions = carry
            hidden, q = trainer.utilities(params, hidden, timestep.obs[None], prev_actions[None])
            actions = action.masked_greedy(q[0], timestep.avail)
            env_state, timestep = env.step(step_key, env_state, actions)
            return (env_state, timestep, hidden, actions), (env_state, timestep, actions)

        _, steps = jax.lax.scan(step, (env_state, timestep, hidden, prev_actions),
                                jax.random.split(key, spec.time_limit))
        return (env_state, timestep), steps

    (first_state, first_step), (states, timesteps, actions) = jax.device_get(jax.jit(play)(agent_params, key))
    done = np.asarray(timesteps.terminated) | np.asarray(timesteps.truncated)
    length = int(np.argmax(done)) + 1 if done.any() else spec.time_limit
    frames = [Frame(first_state, first_step, None)]
    for t in range(length):
        frames.append(Frame(_tree_index(states, t), _tree_index(timesteps, t), np.asarray(actions[t])))
    return frames


# ---------------------------------------------------------------------------------------------- drawing


def predator_prey_items(env_state: Any) -> list[tuple[str, int, int, int]]:
    """What a predator-prey frame shows: ("agent", id, row, col) for every agent in play (frozen
    agents are off the grid) and ("prey", id, row, col) for every prey not yet captured."""
    items = []
    for kind, pos, in_play in (("agent", env_state.agent_pos, env_state.agent_active),
                               ("prey", env_state.prey_pos, env_state.prey_alive)):
        pos, in_play = np.asarray(pos), np.asarray(in_play)
        items += [(kind, i, int(pos[i, 0]), int(pos[i, 1])) for i in range(len(pos)) if in_play[i]]
    return items


def smax_items(env: Any, env_state: Any) -> list[tuple[str, int, float, float, float]]:
    """What a SMAX frame shows: (team, id, x, y, health fraction) for every unit alive; team is
    "ally" for the first `num_allies` units, else "enemy"."""
    inner = env_state.state
    pos, alive = np.asarray(inner.unit_positions), np.asarray(inner.unit_alive)
    health = np.asarray(inner.unit_health, np.float64)
    max_health = np.asarray(env.env.unit_type_health)[np.asarray(inner.unit_types)]
    num_allies = len(env.agents)
    return [("ally" if i < num_allies else "enemy", i, float(pos[i, 0]), float(pos[i, 1]),
             float(np.clip(health[i] / max_health[i], 0.0, 1.0))) for i in range(len(pos)) if alive[i]]


_AGENT_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                  "tab:olive", "tab:cyan", "tab:gray")


def _draw_predator_prey(ax: Any, env: Any, env_state: Any) -> None:
    from matplotlib.patches import Circle, Rectangle  # imported here: matplotlib only when drawing

    n = env.grid_size
    ax.set_xlim(0, n)
    ax.set_ylim(n, 0)  # rows grow downwards
    for k in range(n + 1):
        ax.axhline(k, color="0.8", lw=0.6)
        ax.axvline(k, color="0.8", lw=0.6)
    for kind, i, row, col in predator_prey_items(env_state):
        if kind == "agent":
            ax.add_patch(Circle((col + 0.5, row + 0.5), 0.4, color=_AGENT_COLOURS[i % len(_AGENT_COLOURS)]))
            ax.text(col + 0.5, row + 0.5, str(i), ha="center", va="center", color="white", fontsize=7,
                    fontweight="bold")
        else:
            ax.add_patch(Rectangle((col + 0.2, row + 0.2), 0.6, 0.6, color="black"))


def _draw_smax(ax: Any, env: Any, env_state: Any) -> None:
    from matplotlib.patches import Circle  # imported here: matplotlib only when drawing

    width, height = float(env.env.map_width), float(env.env.map_height)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_facecolor("0.96")
    scale = 0.035 * max(width, height)
    for team, i, x, y, health in smax_items(env, env_state):
        colour = "tab:blue" if team == "ally" else "tab:red"
        ax.add_patch(Circle((x, y), scale * (0.3 + 0.7 * health), color=colour, alpha=0.85))


def _draw_mpe(ax: Any, env: Any, env_state: Any) -> None:
    pos = np.asarray(env_state.p_pos)
    n = len(env.agents)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.scatter(pos[n:, 0], pos[n:, 1], marker="x", color="0.4", s=40)
    for i in range(n):
        ax.scatter([pos[i, 0]], [pos[i, 1]], color=_AGENT_COLOURS[i % len(_AGENT_COLOURS)], s=80)
        ax.text(pos[i, 0], pos[i, 1], str(i), ha="center", va="center", color="white", fontsize=6)


_DRAWERS = {"predator-prey": _draw_predator_prey, "smax": _draw_smax, "mpe": _draw_mpe}


def _draw(ax: Any, kind: str, env: Any, frames: list[Frame], t: int, returns: np.ndarray) -> None:
    _DRAWERS[kind](ax, env, frames[t].env_state)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"step {t}  return {returns[t]:.4g}"
    if kind == "smax" and bool(frames[t].timestep.won):
        title += "  won"
    ax.set_title(title, fontsize=8)


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported here: matplotlib only when drawing
        from matplotlib.figure import Figure  # imported here: matplotlib only when drawing
    except ImportError:
        raise ImportError("rendering needs matplotlib: pip install matplotlib") from None
    return Figure, FigureCanvasAgg


def strip_indices(num_frames: int, max_frames: int = MAX_STRIP_FRAMES) -> list[int]:
    """Up to `max_frames` evenly spaced frame indices, first and last included."""
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(num_frames, max_frames))})


def render_episode(env: Any, frames: list[Frame], path: str | Path) -> int:
    """Draw `frames` (from `play_greedy_episode`) into `path`: an animated GIF of every frame
    when it ends with .gif, else a PNG grid of up to `MAX_STRIP_FRAMES` evenly spaced frames.
    Returns the number of frames drawn. ValueError for an env without a drawer or another suffix."""
    kind = _env_kind(env)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise ValueError(f"the render file must end with .png or .gif, got {path.name!r}")
    if not frames:
        raise ValueError("no frames to render")
    Figure, FigureCanvasAgg = _matplotlib()
    returns = np.cumsum([float(f.timestep.reward) for f in frames])  # frame 0: reward 0 after reset
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        shown = strip_indices(len(frames))
        cols = min(len(shown), 4)
        rows = -(-len(shown) // cols)
        fig = Figure(figsize=(2.6 * cols, 2.8 * rows), dpi=100)
        FigureCanvasAgg(fig)
        for k, t in enumerate(shown):
            _draw(fig.add_subplot(rows, cols, k + 1), kind, env, frames, t, returns)
        fig.tight_layout()
        fig.savefig(path, format="png")
        return len(shown)
    try:
        from PIL import Image  # imported here: Pillow only for a GIF
    except ImportError:
        raise ImportError("GIF rendering needs Pillow: pip install pillow") from None
    images = []
    for t in range(len(frames)):
        fig = Figure(figsize=(3.2, 3.4), dpi=80)
        canvas = FigureCanvasAgg(fig)
        _draw(fig.add_subplot(1, 1, 1), kind, env, frames, t, returns)
        fig.subplots_adjust(left=0.03, right=0.97, bottom=0.03, top=0.9)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=GIF_FRAME_MS,
                   loop=0, optimize=False)
    return len(images)
