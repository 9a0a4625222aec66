"""Episode rendering (`wqmix eval RUN_DIR --render FILE.png|FILE.gif`): frames, drawers, files."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from PIL import Image

from wqmix import config as cfg
from wqmix.cli import main
from wqmix.envs.base import HostEnvironment
from wqmix.envs.matrix_game import MatrixGame
from wqmix.envs.configs import PredatorPreyConfig
from wqmix.envs.predator_prey import PredatorPrey
from wqmix.render import (MAX_STRIP_FRAMES, check_renderable, play_greedy_episode, predator_prey_items,
                          render_episode, strip_indices)
from wqmix.train import Trainer

pytestmark = pytest.mark.integration  # episode pictures of trained runs

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMALL_NETWORKS = cfg.NetworkConfig(agent_hidden=8, mixer_embed=4, hypernet_embed=8, central_agent_hidden=8,
                                   central_mixer_hidden=16)


@pytest.fixture(scope="module")
def episode():
    """A freshly initialised (untrained) trainer on a small predator-prey and one greedy episode."""
    config = cfg.with_env(cfg.Config(), "predator-prey")
    config = dataclasses.replace(config, network=SMALL_NETWORKS,
                                 env=PredatorPreyConfig(grid_size=5, num_agents=3, num_prey=2, time_limit=12))
    trainer = Trainer(config)
    params = trainer.init(jax.random.key(0)).learner.params["agent"]
    return trainer, play_greedy_episode(trainer, params, jax.random.key(1))


def test_frames_are_the_reset_and_every_step_until_done(episode):
    trainer, frames = episode
    assert 2 <= len(frames) <= trainer.spec.time_limit + 1
    assert frames[0].actions is None and float(frames[0].timestep.reward) == 0.0
    assert [int(f.env_state.t) for f in frames] == list(range(len(frames)))  # one frame per step, in order
    done = [bool(f.timestep.terminated | f.timestep.truncated) for f in frames]
    assert done[-1] and not any(done[:-1])  # stops at the step that ended the episode, not before
    for f in frames[1:]:
        assert f.actions.shape == (3,) and np.all((f.actions >= 0) & (f.actions < 6))


def test_png_strip(episode, tmp_path):
    trainer, frames = episode
    path = tmp_path / "ep.png"
    drawn = render_episode(trainer.env, frames, path)
    assert drawn == min(len(frames), MAX_STRIP_FRAMES)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    with Image.open(path) as image:
        assert image.width > 500 and image.height > 200


def test_gif_has_one_frame_per_step(episode, tmp_path):
    trainer, frames = episode
    path = tmp_path / "ep.gif"
    assert render_episode(trainer.env, frames, path) == len(frames)
    with Image.open(path) as image:
        assert image.format == "GIF" and image.is_animated
        assert image.n_frames == len(frames) > 1


def test_strip_indices_are_evenly_spaced_and_capped():
    assert strip_indices(5) == [0, 1, 2, 3, 4]
    long = strip_indices(201)
    assert len(long) == MAX_STRIP_FRAMES and long[0] == 0 and long[-1] == 200
    gaps = np.diff(long)
    assert gaps.min() >= 13 and gaps.max() <= 14


def test_items_follow_the_state_and_leave_out_frozen_agents_and_caught_prey():
    env = PredatorPrey(PredatorPreyConfig(grid_size=5, num_agents=3, num_prey=2, time_limit=10))
    state, _ = env.reset_to([[0, 1], [2, 3], [4, 0]], [[1, 1], [3, 4]], frozen=[False, True, False],
                            caught=[True, False])
    assert predator_prey_items(state) == [("agent", 0, 0, 1), ("agent", 2, 4, 0), ("prey", 1, 3, 4)]


def test_drawer_puts_agents_and_prey_in_their_cells():
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    from wqmix.render import _draw_predator_prey

    env = PredatorPrey(PredatorPreyConfig(grid_size=5, num_agents=3, num_prey=2, time_limit=10))
    state, _ = env.reset_to([[0, 1], [2, 3], [4, 0]], [[1, 1], [3, 4]], frozen=[False, True, False])
    ax = Figure().add_subplot(1, 1, 1)
    _draw_predator_prey(ax, env, state)
    circles = [p.center for p in ax.patches if isinstance(p, Circle)]
    squares = [p.get_xy() for p in ax.patches if isinstance(p, Rectangle)]
    assert circles == [(1.5, 0.5), (0.5, 4.5)]  # (column + 0.5, row + 0.5); agent 1 is frozen
    assert np.allclose(np.subtract(squares, 0.2), [(1, 1), (4, 3)])  # prey 0 at row 1, col 1; prey 1 at row 3, col 4
    assert sorted(t.get_text() for t in ax.texts) == ["0", "2"]  # numbered by id
    assert ax.get_ylim() == (5, 0)  # rows grow downwards


def test_matrix_game_and_host_envs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="rendering is available for predator-prey, smax"):
        check_renderable(MatrixGame())
    with pytest.raises(ValueError, match="rendering is available"):
        render_episode(MatrixGame(), [], tmp_path / "x.png")

    class HostOnly(HostEnvironment):
        def reset(self, seed):
            raise NotImplementedError

        def step(self, actions):
            raise NotImplementedError

    with pytest.raises(ValueError, match="needs a JAX environment"):
        check_renderable(HostOnly())


def test_other_suffixes_are_refused(episode, tmp_path):
    trainer, frames = episode
    with pytest.raises(ValueError, match=r"\.png or \.gif"):
        render_episode(trainer.env, frames, tmp_path / "ep.jpg")
    assert not (tmp_path / "ep.jpg").exists()


@pytest.mark.slow
def test_eval_renders_a_trained_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--algo", "vdn", "--env", "predator-prey", "--env.grid-size", "5", "--env.num-agents", "3",
                 "--env.num-prey", "2", "--env.time-limit", "20", "--train.total-env-steps", "400",
                 "--train.batch-size", "2", "--train.buffer-size", "4", "--network.agent-hidden", "8",
                 "--network.mixer-embed", "4", "--network.hypernet-embed", "8",
                 "--network.central-agent-hidden", "8", "--network.central-mixer-hidden", "16",
                 "--log.num-chunks", "1", "--log.test-episodes", "2", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    png = tmp_path / "pictures" / "ep.png"
    assert main(["eval", str(out), "--episodes", "1", "--render", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    assert str(png) in capsys.readouterr().out
    assert json.loads((out / "eval-400.json").read_text())["render"] == str(png)
    assert main(["eval", str(out), "--render", str(tmp_path / "ep.jpg")]) == 2
    assert "must end with .png or .gif" in capsys.readouterr().err
    assert not (tmp_path / "ep.jpg").exists()
