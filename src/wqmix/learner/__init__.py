"""The learner: one update for every algorithm.

`update.make_loss` is the paper's loss, top to bottom: the online utilities and their greedy
joint action, Q_tot, the targets (one-step or TD(lambda), time-limit cuts bootstrapped), the
weights, the weighted QMIX loss and Q-hat*'s own loss. What differs between algorithms are three
pieces (`pieces.Pieces`), chosen from the config by `assemble.pieces_for`:

- `Factorisation`: utilities -> Q_tot (QMIX, VDN, independent heads, the projector family in
  `projector`, QPLEX in `qplex`, QTRAN in `qtran`, Qatten in `qatten`), plus extra loss terms,
  extra metrics and state kept between updates;
- `TargetSource`: which target networks give V(s'), at which joint action;
- `Weighting`: the weight of each squared TD error (none, OW, CW, greedy-only).

How a new factorisation plugs in (QPLEX, QTRAN, Qatten, ...):

1. Write a class with `init_carry`, `mix` and `bootstrap` (`pieces.Factorisation`). `mix`
   receives the online parameters of every network (`params`, a dict by network name), every
   agent's utilities with the taken and greedy joint actions (`pieces.Agents`), the batch
   (`pieces.Transitions`: states, masks, the agent networks' inputs) and the learner's context
   (update count, carry, a key). It returns `pieces.Mixed`: Q_tot at the taken actions, and
   optionally named extra losses (added to the loss as they are), named metrics (logged as
   metrics.csv columns) and the carry to keep.
2. `bootstrap` turns the target source's `pieces.Bootstrap` (the target agents' utilities and
   hidden states, the joint action bootstrapped at, the target mixer and its value there) into
   V(s'); it receives the online and the target parameters, so it may evaluate any network
   itself. The paper's mixers return `boot.next_value` unchanged; a target mixer that reads more
   than the utilities is run by the factorisation (`TargetNetworks(mixes=False)`). A target of
   another kind is a new `TargetSource`.
3. Give its networks a name in `agents.Networks` / `init_params` and choose it in
   `assemble.pieces_for` from its config. The paper's loss (`update.make_loss`) does not change.

The comparison set plugged in this way; `update.make_loss` changed only to hand the agents' hidden
states on (`Agents.hidden`, which QTRAN reads). QPLEX
(`qplex`, official `dmaq_qatten_learner.py`): `mix` is V + A with the advantage term reading each
agent's greedy utility, `pick(agents.utilities, agents.greedy)`, and the one-hot taken joint action
from `batch.actions`; `bootstrap` calls the target dueling mixer on the target utilities at u*(s')
(`boot.utilities`, `boot.actions`) and at their own masked max. QTRAN (`qtran`, `qtran_learner.py`):
`mix` returns the joint-action network's Q_jt(s, u), read from the agents' hidden states
(`agents.hidden`), as Q_tot, and L_opt, L_nopt as extra losses; `bootstrap` runs the target joint
network on the target agents' hidden states (`boot.hidden`) at u*(s'). Qatten (`qatten`,
`qatten_learner.py`): `mix` is the attention mixer, its logit regulariser an extra loss.

`make_loss(algo, networks, pieces)` takes any pieces: tests plant an error by passing a test
double of one piece.
"""

from wqmix.learner.assemble import make_optimizer, pieces_for
from wqmix.learner.pieces import Pieces, stored_agent_inputs, time_major, unroll_episodes, unroll_with_hidden
from wqmix.learner.update import (LearnerState, UpdateMetrics, copy_targets, init_learner, make_loss, make_update,
                                  standardise_batch_rewards)

__all__ = ["LearnerState", "Pieces", "UpdateMetrics", "copy_targets", "init_learner", "make_loss", "make_optimizer",
           "make_update", "pieces_for", "standardise_batch_rewards", "stored_agent_inputs", "time_major",
           "unroll_episodes", "unroll_with_hidden"]
