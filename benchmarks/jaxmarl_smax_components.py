"""JaxMARL's QMIX on SMAX 3m, its sample and learn phases each timed alone, with its own modules
(`shared/anchors/jaxmarl-qmix/qmix_rnn.py`: RNNQNetwork, MixingNetwork, ScannedRNN) at pymarl
sizes (hidden 64, mixer 32, hypernet 64). Acting is its `_step_env` scan (16 envs x 128 steps,
epsilon 0.3, SMAXLogWrapper and CTRolloutManager as its script builds them); learning is its
`_learn_phase` body (8 updates of 32 rollouts of 128 steps, RAdam after a global-norm clip of
10) on random data of the shapes its buffer gives. Runs in the anchor's venv (it needs
jaxmarl's wrappers and the anchor's copy of qmix_rnn.py):

    /tmp/wqmix-jaxmarl-anchor/venv/bin/python benchmarks/jaxmarl_smax_components.py [REPS] [ANCHOR_DIR]

Set beside `benchmarks/smax_components.py`, run right before or after it.
"""

import os
import sys

import jax
import jax.numpy as jnp
import optax

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "shared", "anchors", "jaxmarl-qmix"))
from jaxmarl import make  # noqa: E402 - after sys.path points at the anchor's code
from jaxmarl.environments.smax import map_name_to_scenario  # noqa: E402 - after sys.path points at the anchor's code
from jaxmarl.wrappers.baselines import CTRolloutManager, SMAXLogWrapper  # noqa: E402 - after sys.path points at the anchor's code
from qmix_rnn import MixingNetwork, RNNQNetwork, ScannedRNN  # noqa: E402 - after sys.path points at the anchor's code

from _timing import median_ms  # noqa: E402 - benchmarks/ is on the path of a script run from it

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
H, E, T, B, EPOCHS = 64, 16, 128, 32, 8

env = SMAXLogWrapper(make("HeuristicEnemySMAX", scenario=map_name_to_scenario("3m"), see_enemy_actions=True,
                          walls_cause_death=True, attack_mode="closest"))  # its ql_rnn_smax.yaml ENV_KWARGS
rollouts = CTRolloutManager(env, batch_size=E)
A, OBS, NACT = env.num_agents, rollouts.obs_size, rollouts.max_action_space
STATE = rollouts.batch_reset(jax.random.key(0))[0]["__all__"].shape[-1]
net, mixer = RNNQNetwork(action_dim=NACT, hidden_dim=H), MixingNetwork(32, 64, 0.001)
agent_params = net.init(jax.random.key(1), ScannedRNN.initialize_carry(H, 1), jnp.zeros((1, 1, OBS)), jnp.zeros((1, 1)))
params = {"agent": agent_params,
          "mixer": mixer.init(jax.random.key(2), jnp.zeros((A, 1, 1)), jnp.zeros((1, 1, STATE)))}


def batchify(x):
    return jnp.stack([x[a] for a in env.agents], axis=0)


def eps_greedy(rng, q, eps, valid):  # its eps_greedy_exploration
    rng_a, rng_e = jax.random.split(rng)
    greedy = jnp.argmax(q - (1 - valid) * 1e10, axis=-1)
    def pick(r, v):
        return jax.random.choice(r, jnp.arange(v.shape[-1]), p=v / jnp.sum(v, -1))
    random = jax.vmap(pick)(jax.random.split(rng_a, valid.shape[0]), valid)
    return jnp.where(jax.random.uniform(rng_e, greedy.shape) < eps, random, greedy)


def act(rng, agent_params):
    def step(carry, _):
        hs, last_obs, last_dones, env_state, rng = carry
        rng, rng_a, rng_s = jax.random.split(rng, 3)
        hs, q = jax.vmap(net.apply, in_axes=(None, 0, 0, 0))(agent_params, hs, batchify(last_obs)[:, None],
                                                            batchify(last_dones)[:, None])
        avail = rollouts.get_valid_actions(env_state.env_state)
        actions = jax.vmap(eps_greedy, in_axes=(0, 0, None, 0))(jax.random.split(rng_a, A), q.squeeze(1), 0.3,
                                                               batchify(avail))
        actions = {a: actions[i] for i, a in enumerate(env.agents)}
        obs, env_state, rewards, dones, infos = rollouts.batch_step(rng_s, env_state, actions)
        return (hs, obs, dones, env_state, rng), (last_obs, actions, rewards, last_dones, avail, infos)

    rng, reset_rng = jax.random.split(rng)
    obs, env_state = rollouts.batch_reset(reset_rng)
    dones = {a: jnp.zeros((E,), bool) for a in env.agents + ["__all__"]}
    hs = ScannedRNN.initialize_carry(H, A, E)
    return jax.lax.scan(step, (hs, obs, dones, env_state, rng), None, T)[1]


keys = jax.random.split(jax.random.key(3), 5)
obs = jax.random.normal(keys[0], (A, T, B, OBS))
dones = jax.random.uniform(keys[1], (A, T, B)) < 0.02
actions = jax.random.randint(keys[2], (A, T, B), 0, NACT)
avail = jnp.ones((A, T, B, NACT))
state = jax.random.normal(keys[3], (T, B, STATE))
reward, done_all = jax.random.normal(keys[4], (T, B)), dones[0]
tx = optax.chain(optax.clip_by_global_norm(10), optax.radam(5e-5))


def learn(params, target, opt):
    def update(carry, _):  # its _learn_phase, minus the buffer sample
        params, opt = carry
        init_hs = ScannedRNN.initialize_carry(H, A, B)
        _, q_next_target = jax.vmap(net.apply, in_axes=(None, 0, 0, 0))(target["agent"], init_hs, obs, dones)

        def loss_fn(params):
            _, q = jax.vmap(net.apply, in_axes=(None, 0, 0, 0))(params["agent"], init_hs, obs, dones)
            chosen = jnp.take_along_axis(q, actions[..., None], axis=-1).squeeze(-1)
            best = jnp.argmax(q - (1 - avail) * 1e10, axis=-1)
            q_next = jnp.take_along_axis(q_next_target, best[..., None], axis=-1).squeeze(-1)
            y = reward[:-1] + (1 - done_all[:-1]) * 0.99 * mixer.apply(target["mixer"], q_next, state)[1:]
            q_tot = mixer.apply(params["mixer"], chosen, state)[:-1]
            return jnp.mean((q_tot - jax.lax.stop_gradient(y)) ** 2)

        grads = jax.grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), None

    return jax.lax.scan(update, (params, opt), None, EPOCHS)[0]


act_c = jax.jit(act).lower(jax.random.key(0), agent_params).compile()
act_keys = iter(jax.random.split(jax.random.key(4), REPS + 3))
act_ms = median_ms(lambda: act_c(next(act_keys), agent_params), REPS)
opt = tx.init(params)
learn_c = jax.jit(learn).lower(params, params, opt).compile()
learn_ms = median_ms(lambda: learn_c(params, params, opt), REPS)
print(f"jaxmarl qmix: acting 2048 env steps {act_ms[0]:.1f} ms (min {act_ms[1]:.1f}); "
      f"8 updates {learn_ms[0]:.1f} ms (min {learn_ms[1]:.1f}); obs {OBS}, state {STATE}, actions {NACT}")
