"""An algorithm's pieces and optimiser, chosen from its config."""

from __future__ import annotations

import optax

from wqmix.agents import PROJECTOR_PARAMS, Networks
from wqmix.config import AlgoConfig, OptimConfig
from wqmix.learner.pieces import (Central, GreedyOnly, MixerNetwork, Optimistic, Pieces, TargetNetworks, Unweighted,
                                  Weighting)
from wqmix.learner.projector import ProjectorMixer
from wqmix.learner.qatten import AttentionMix
from wqmix.learner.qplex import DuelingMix
from wqmix.learner.qtran import JointActionValue


def pieces_for(algo: AlgoConfig, networks: Networks) -> Pieces:
    """The factorisation (`algo.mixer`, `algo.projector`), target source (`algo.central`,
    `algo.double_q`) and weighting (`algo.weighting`, `algo.alpha`) of `algo`."""
    if algo.projector.kind != "none":
        factorisation = ProjectorMixer(networks, algo.projector)
    elif algo.mixer == "dmaq":
        factorisation = DuelingMix(networks)
    elif algo.mixer == "qtran":
        factorisation = JointActionValue(networks, algo.qtran)
    elif algo.mixer == "qatten":
        factorisation = AttentionMix(networks, algo.qatten)
    else:
        factorisation = MixerNetwork(networks)
    if algo.central:  # the paper: target Q-hat* at online QMIX's greedy joint action
        target = TargetNetworks(networks, "central_agent", "central_mixer", at_online_greedy=True)
    else:  # the algorithm's own target networks, double Q or at their own argmax (the projector write-up's code)
        # QTRAN's and Qatten's target mixers read more than the utilities: their factorisation runs them.
        target = TargetNetworks(networks, "agent", "mixer", at_online_greedy=algo.double_q,
                                mixes=algo.mixer not in ("qtran", "qatten"))
    weighting: Weighting = {"none": Unweighted(), "ow": Optimistic(algo.alpha), "cw": Central(algo.alpha),
                            "greedy-only": GreedyOnly()}[algo.weighting]
    return Pieces(factorisation=factorisation, target=target, weighting=weighting)


def make_optimizer(optim: OptimConfig, algo: AlgoConfig | None = None) -> optax.GradientTransformation:
    """Global-norm clipping over all parameters, PyTorch's coupled weight decay, then RMSprop
    (PyTorch semantics: eps outside the square root, no bias correction), Adam or RAdam. With the write-up's
    projector learning rate (`algo.projector.lr`) its parameters get their own base optimiser."""

    def base(lr: float) -> optax.GradientTransformation:
        if optim.name == "rmsprop":
            return optax.rmsprop(lr, decay=optim.rmsprop_decay, eps=optim.eps, eps_in_sqrt=False)
        if optim.name == "radam":
            return optax.radam(lr, eps=optim.eps)
        return optax.adam(lr, eps=optim.eps)

    steps = [optax.clip_by_global_norm(optim.grad_norm_clip)]
    if optim.weight_decay > 0:
        steps.append(optax.add_decayed_weights(optim.weight_decay))
    projector_lr = algo.projector.lr if algo is not None else None
    if projector_lr is None:
        steps.append(base(optim.lr))
    else:
        def labels(params):
            return {k: "projector" if k in PROJECTOR_PARAMS else "main" for k in params}
        steps.append(optax.multi_transform({"main": base(optim.lr), "projector": base(projector_lr)}, labels))
    return optax.chain(*steps)
