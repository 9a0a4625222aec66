"""`wqmix bench`: the workloads are the schedules the performance issue names; bad options fail."""

import dataclasses

import pytest

from wqmix import config as cfg
from wqmix.bench import WORKLOADS
from wqmix.cli.bench import main


def test_workloads_have_the_named_schedules():
    configs = {name: cfg.validate(w.make_config("ow-qmix")) for name, w in WORKLOADS.items()}
    paper = configs["predator-prey-paper"]
    assert paper.env.name == "predator-prey" and paper.env.num_agents == 8
    assert (paper.train.num_envs, paper.train.updates_per_iteration, paper.train.batch_size,
            paper.train.buffer_size) == (1, 1, 32, 5000)
    fast = configs["predator-prey-fast"]
    assert (fast.train.num_envs, fast.train.updates_per_iteration) == (8, 1)
    assert configs["seeds-16"].num_seeds == 16 and configs["seeds-16"].train == paper.train
    mpe = configs["mpe-spread-jaxmarl"]
    assert (mpe.train.num_envs, mpe.network.agent_hidden, mpe.network.mixer_embed, mpe.network.hypernet_embed) == (
        8, 64, 32, 128)
    smax = configs["smax-3m-jaxmarl"]
    assert smax.env.map == "3m" and (smax.train.num_envs, smax.train.updates_per_iteration) == (12, 1)
    assert (smax.network.agent_hidden, smax.network.mixer_embed, smax.network.hypernet_embed) == (64, 32, 64)
    assert cfg.validate(WORKLOADS["matrix-game"].make_config("qmix")).algo.name == "qmix"
    spread = configs["pettingzoo-spread"]  # the fast protocol: 8 envs side by side, one update per 8 episodes
    assert spread.env.name == "pettingzoo" and "simple_spread" in spread.env.factory
    assert (spread.train.num_envs, spread.train.updates_per_iteration) == (8, 1)
    assert [w.name for w in WORKLOADS.values() if w.host] == ["pettingzoo-spread", "gym-lbf",
                                                              "pettingzoo-spread-workers"]
    assert [w.name for w in WORKLOADS.values() if w.raw] == ["jaxmarl-overcooked", "jumanji-lbf"]
    overcooked, lbf = configs["jaxmarl-overcooked"], configs["jumanji-lbf"]
    assert overcooked.env.id == "overcooked" and overcooked.train.buffer_size == 500  # 1.7 GB, not 16.7
    assert lbf.env.id == "LevelBasedForaging-v0" and configs["gym-lbf"].env.id == "Foraging-8x8-2p-3f-v3"
    for one in (overcooked, lbf, configs["gym-lbf"]):
        assert (one.train.num_envs, one.train.updates_per_iteration) == (8, 1)
    workers = configs["pettingzoo-spread-workers"]  # the same, its envs stepped in 2 processes
    assert workers.train == dataclasses.replace(spread.train, env_workers=2)
    for name, one in (("seeds-16-mpe", mpe), ("seeds-16-smax", smax)):  # 16 seeds of the same schedule
        assert configs[name].num_seeds == 16 and configs[name].train == one.train


@pytest.mark.parametrize("argv, message", [
    (["--workload", "nope"], "argument --workload: 'nope' is invalid: must be one of matrix-game"),
    (["--algo", "wqmix"], "argument --algo: 'wqmix' is invalid: must be one of ow-qmix"),
    (["--json"], "argument --json: expected one argument"),
])
def test_bad_options(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_matmul_flops_counts_loop_bodies_as_often_as_they_run():
    import jax
    import jax.numpy as jnp

    from wqmix.bench import matmul_flops

    w = jnp.ones((4, 6))

    def recurrence(h, xs):  # 5 steps of (3, 4) x (4, 6), and one (3, 6) x (6, 2) after the loop
        h = jax.lax.scan(lambda h, x: ((h @ w)[:, :4] + x, None), h, xs)[0]
        return jnp.concatenate([h, h[:, :2]], axis=1) @ jnp.ones((6, 2))

    forward = 5 * 2 * 3 * 4 * 6 + 2 * 3 * 6 * 2
    assert matmul_flops(jax.make_jaxpr(recurrence)(jnp.ones((3, 4)), jnp.ones((5, 3, 4))).jaxpr) == forward
    # The gradient with respect to w adds, per step, dL/dh (3, 6) x (6, 4) and h^T (4, 3) x (3, 6).
    grad = jax.grad(lambda w_, h, xs: jnp.sum(jax.lax.scan(lambda h, x: ((h @ w_)[:, :4] + x, None), h, xs)[0]))
    jaxpr = jax.make_jaxpr(grad)(w, jnp.ones((3, 4)), jnp.ones((5, 3, 4))).jaxpr
    assert matmul_flops(jaxpr) == 3 * 5 * 2 * 3 * 4 * 6


def test_output_checksum_sums_every_leaf_as_float32():
    import jax.numpy as jnp
    import numpy as np

    from wqmix.bench import output_checksum

    tree = {"obs": jnp.array([[1.5, 2.0], [-0.5, 4.0]]), "done": (jnp.array([True, False, True]),
                                                                   np.int8(-3)), "reward": jnp.float32(0.25)}
    assert float(output_checksum(tree)) == 1.5 + 2.0 - 0.5 + 4.0 + 2 - 3 + 0.25
    assert float(output_checksum(())) == 0.0


def test_acting_network_flops_are_the_agent_layers_for_every_agent_of_every_env(tiny):
    import jax

    from wqmix.bench import acting_network_flops
    from wqmix.train import Trainer, seed_keys

    trainer = Trainer(tiny("qmix"))
    states = jax.vmap(trainer.init)(seed_keys(0, 1))
    agent = jax.tree_util.tree_map(lambda x: x[0], states.learner.params["agent"])["params"]
    (inputs, hidden), actions = agent["fc1"]["kernel"].shape, trainer.spec.num_actions
    rows = 5 * trainer.spec.num_agents  # 5 envs
    # fc1, the GRU's input and hidden projections to its 3 gates, fc2: 2 x rows x in x out each.
    expected = 2 * rows * (inputs * hidden + 2 * hidden * 3 * hidden + hidden * actions)
    assert acting_network_flops(trainer, states, 5) == expected


def test_the_raw_policy_outputs_what_the_adapter_sees():
    """The env alone (`raw_random_policy`) returns the observations and rewards of the step the
    adapter takes with the same actions and key."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from wqmix.envs.jaxmarl_envs import from_jaxmarl
    from wqmix.envs.signalling import SignallingGame

    env = from_jaxmarl(SignallingGame(), 0, "auto", "auto", field="env.factory", value="test")
    reset, step = env.raw_random_policy()
    key = jax.random.key(3)
    inner = reset(jax.random.key(1))
    stepped, (obs, rewards, dones) = step(key, inner)
    keys = jax.random.split(key, len(env.agents) + 1)  # as the raw step draws its actions
    actions = jnp.array([jax.random.randint(keys[i], (), 0, n) for i, n in enumerate(env.shapes.action_counts)])
    (adapter_inner, _), timestep = env.step(keys[-1], (inner, jnp.int32(0)), actions)
    for i, name in enumerate(env.agents):
        real = env.shapes.obs_sizes[i]
        np.testing.assert_array_equal(np.asarray(obs[name]), np.asarray(timestep.obs[i, :real]))
    assert float(timestep.reward) == float(sum(rewards[a] for a in env.agents))
    assert bool(dones["__all__"]) == bool(timestep.terminated | timestep.truncated)
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool(jnp.all(a == b)), stepped, adapter_inner))
