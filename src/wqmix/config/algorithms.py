"""The algo section (`AlgoConfig`, its `ProjectorConfig`) and the algorithm registry: which
algorithms `--algo NAME` accepts (`ALGORITHMS`) and which fields make each one what it is
(`DEFINING_FIELDS`). What choosing a name sets besides (its optimiser and official settings) is in
`wqmix.config.presets` (`with_algo`).

Every default names its source in the field's docstring (see `wqmix.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MixerName = Literal["qmix", "vdn", "dmaq", "qtran", "qatten", "none"]
WeightingName = Literal["none", "ow", "cw", "greedy-only"]
ProjectorKind = Literal["none", "state", "state-action"]
OmegaMode = Literal["constant", "advantage", "learned"]


@dataclass(frozen=True)
class ProjectorConfig:
    """The projector write-up's additive "weighted projector" (`shared/seeds/000_571ff9a03b5a1893.txt`;
    NOT the paper's algorithm): Q_tot(s, u) = Q_mono(s, u) + sum_k omega_k * Q_proj,k(s), with Q_mono
    the QMIX mixer and Q_proj a small MLP. With `kind` "none" (every paper algorithm) nothing
    here is used. The tricks (`last_layer_init` .. `normalization`) are off by default."""

    kind: ProjectorKind = "none"
    """none; state: Q_proj(s) = Linear(s -> mixer width) -> ReLU -> Linear(-> 1) (write-up, section
    4); state-action: Q_proj(s, u) on s || one-hot joint action (write-up, extension 9.1; then
    per-agent greedy acting no longer maximises Q_tot). Default: none (paper algorithms)."""
    omega: OmegaMode = "constant"
    """constant: omega = `omega_value` (the write-up's code, `self.omega`); advantage: omega(s, u) =
    |A| / (running mean of |A| + 1e-6), A = Q_mono(s, u) - V(s), V(s) = E_u[Q_mono(s, u)] under
    uniform available joint actions (the write-up's text, 2.3), a constant for the gradient; learned:
    omega_k(s) = sigmoid(Linear(s -> mixer width) -> ReLU -> Linear(-> heads)) (write-up, 9.2).
    Default: the write-up's code."""
    omega_value: float = 1.0
    """omega in the constant mode, and omega_max when annealed (a factor on every mode).
    Default: the write-up's code (`omega = 1.0`)."""
    heads: int = 1
    """Projector heads in the ensemble, Q_tot = Q_mono + sum_k omega_k Q_proj,k (write-up, 9.3).
    Default: the write-up's code (one head)."""
    value_samples: int = 32
    """V(s) for the advantage omega: exact over the joint actions when there are at most this
    many, else the mean over this many sampled joint actions (each agent uniform over its
    available actions). Default: ours."""
    advantage_rate: float = 0.01
    """Rate of the running mean of |A| over updates: m <- (1 - rate) m + rate * batch mean (the
    first update takes the batch mean). Default: ours (the write-up gives no value)."""
    omega_anneal_steps: int | None = None
    """Trick: omega times 1 - exp(-updates / this), updates counted from 0 (write-up, trick 2);
    None: off. Default: off."""
    last_layer_init: float | None = None
    """Trick: the projector's last layer uniform in +-this (write-up, trick 1: 3e-3); None: PyTorch's
    default. Default: off."""
    clip: float | None = None
    """Trick: clip Q_proj to +-this (write-up, trick 3: 10); None: off. Default: off."""
    lr: float | None = None
    """Trick: a learning rate of its own for the projector (and learned omega) parameters (write-up,
    trick 4: 1e-4); None: the optimiser's. Default: off."""
    l2: float = 0.0
    """Trick: loss += l2 * sum of the squared projector parameters (write-up, pitfall 8.3).
    Default: off (0)."""
    normalization: Literal["none", "layer"] = "none"
    """Trick: normalise the projector's hidden layer (write-up, pitfall 8.1, says batch
    normalisation; LayerNorm is used because it needs no running statistics or train/eval mode
    inside the compiled update). Default: off."""


@dataclass(frozen=True)
class QplexConfig:
    """QPLEX's duplex dueling mixer (`algo.mixer` "dmaq"; official `qplex.yaml` with `DMAQer` and
    `DMAQ_SI_Weight`, taken by oxwhirl/wqmix from wjh720/QPLEX). Unused by every other mixer."""

    num_kernel: int = 10
    """Attention heads of the advantage weights lambda_i(s, u). Default: official (`num_kernel: 10`)."""
    adv_hypernet_layers: int = 3
    """Layers of each head's key, agent and action networks, 1 to 3. Default: official
    (`adv_hypernet_layers: 3`)."""
    adv_hypernet_embed: int = 64
    """Width of those networks' hidden layers. Default: official (`adv_hypernet_embed: 64`)."""
    is_minus_one: bool = True
    """A_tot = sum_i A_i (lambda_i - 1) (true) or sum_i A_i lambda_i. Default: official
    (`is_minus_one: True`)."""
    weighted_head: bool = True
    """Each utility becomes w_i(s) Q_i + v_i(s) before the sums. Default: official (`weighted_head: True`)."""


@dataclass(frozen=True)
class QtranConfig:
    """QTRAN-base (`algo.mixer` "qtran"; official `qtran.yaml`: mixer `qtran_base`, `qtran_arch:
    qtran_paper`, learner `qtran_learner.py`). Unused by every other mixer."""

    embed: int = 64
    """Width of the joint-action network Q_jt and of V_jt. Default: official (`mixing_embed_dim: 64`)."""
    network_size: Literal["small", "big"] = "small"
    """Two hidden layers in Q_jt and V_jt (small) or three (big). Default: official (`network_size: small`)."""
    opt_loss: float = 1.0
    """Coefficient of L_opt = (sum_i max Q_i - Q_jt(s, u*) + V_jt(s))^2. Default: official (`opt_loss: 1`)."""
    nopt_min_loss: float = 0.1
    """Coefficient of L_nopt = min(sum_i Q_i(u_i) - Q_jt(s, u) + V_jt(s), 0)^2. Default: official
    (`nopt_min_loss: 0.1`)."""


@dataclass(frozen=True)
class QattenConfig:
    """Qatten's attention mixer (`algo.mixer` "qatten"; official `QattenMixer` with
    `qatten_learner.py`). The repository registers it with no config file; every default is the
    Qatten mixer's option in the QPLEX authors' `qplex_qatten_sc2.yaml` (wjh720/QPLEX, the source
    of the repository's Qatten code) unless it says otherwise. Unused by every other mixer."""

    n_head: int = 4
    """Attention heads. Default: `n_head: 4`."""
    embed: int = 32
    """Width of the queries and keys and of V(s). Default: `mixing_embed_dim: 32`."""
    attend_reg_coef: float = 0.001
    """Coefficient of the attention-logit regulariser, coef * sum_h mean(logit_h^2). Default:
    `attend_reg_coef: 0.001`."""
    hypernet_layers: int = 1
    """Layers of each query network and of the head weights, 1 or 2 (width `network.hypernet_embed`).
    Default: the mixer's own (`getattr(args, "hypernet_layers", 1)`; the config sets none)."""
    nonlinear: bool = False
    """Append Q_i to agent i's key input. Default: `nonlinear: False`."""
    weighted_head: bool = False
    """Weigh the heads by |w(s)| (else sum them). Default: `weighted_head: False`."""
    state_bias: bool = True
    """Add V(s). Default: `state_bias: True`."""
    mask_dead: bool = False
    """No attention on agents whose action is 0 (the official code's SMAC convention: a dead
    unit's only action, no-op, is 0). Default: `mask_dead: False`."""
    unit_dim: int | None = None
    """Agent i's own features for its key: state entries [i * unit_dim, (i + 1) * unit_dim) (the
    official `unit_dim`, which SMAC gives as its per-ally state features). None: the env's
    `EnvSpec.state_unit_dim` where it declares one (SMAX: its per-unit world-state features),
    else state_dim // agents (ours)."""


@dataclass(frozen=True)
class AlgoConfig:
    """What is learned and how the loss weighs it. `--algo NAME` picks one of `ALGORITHMS`."""

    mixer: MixerName = "qmix"
    """How agent utilities combine into Q_tot: monotonic QMIX mixer, VDN sum, QPLEX's duplex
    dueling mixer (dmaq), or none (independent learners, IQL). Default: paper (WQMIX projects onto
    QMIX's monotonic class)."""
    central: bool = True
    """Learn the unrestricted central Q-hat* (its own agent RNN + feed-forward mixer) and take
    the targets from its target networks at online QMIX's greedy joint action. Default: paper."""
    central_mixer: Literal["ff", "atten"] = "ff"
    """Q-hat*'s mixer: feed-forward (official `QMixerCentralFF`) or attention over agents (official
    `QMixerCentralAtten`, `central_mixer: "atten"`, which the official README used for corridor;
    it runs only with `central_action_embed: 1`, the only value here). Default: official
    (`central_mixer: "ff"` in `ow_qmix.yaml` and `cw_qmix.yaml`)."""
    weighting: WeightingName = "ow"
    """Weight of each squared TD error in the QMIX loss: none (w = 1), OW (optimistic:
    w = 1 where Q_tot < y, else alpha), CW (central: w = 1 where the action is the greedy one
    or y > Q-hat*(s, greedy), else alpha), or greedy-only (the write-up's text, 2.4, which calls it
    its "optimistic" loss: w = 1 where every agent's action is the argmax of its utility, else
    0; not the paper's OW). Default: paper's OW-QMIX."""
    alpha: float = 0.1
    """The weight given to the down-weighted transitions, in (0, 1]. Default: official
    `w: 0.1` (called alpha in the paper); the paper's README uses 0.5 on 3s5z, and `--algo`
    gives the ablations (`*-no-central`) the official `qmix_w.yaml`'s 0.5."""
    gamma: float = 0.99
    """Discount factor in [0, 1]. Default: official."""
    td_lambda: float = 0.0
    """TD(lambda) mixing of the targets, in [0, 1]; 0 gives the one-step targets of the official
    code. pymarl2 uses 0.6. Default: official (one-step)."""
    double_q: bool = True
    """Without the central estimator: bootstrap at online greedy actions valued by the target
    networks (true, official `double_q: True`) or at the target agents' own masked argmax (false,
    the write-up's code: `target_agent_q.max(dim=-1)`). Default: official."""
    standardise_rewards: bool = False
    """Before each update, merge the batch's rewards into running moments and learn from
    (r - mean) / std (`losses.update_reward_moments`; EPyMARL's learners, `standardise_rewards: True`
    in its `qmix.yaml`). Default: official (off: the paper's code learns from raw rewards)."""
    qmix_loss_coef: float = 1.0
    """Coefficient of the weighted QMIX loss. Default: official (`qmix_loss: 1`)."""
    central_loss_coef: float = 1.0
    """Coefficient of the central Q-hat* loss. Default: official (`central_loss: 1`);
    pymarl2 uses 0.5."""
    target_update: Literal["hard", "soft"] = "hard"
    """hard: copy every online network into its target every `target_update_interval`
    episodes (official); soft: after every update, target <- tau * online + (1 - tau) * target
    (Polyak; the write-up's `_soft_update`). Default: official."""
    target_update_interval: int = 200
    """Hard copy of every online network into its target every this many episodes.
    Default: official (`target_update_interval: 200`)."""
    tau: float = 0.005
    """The soft update's rate, in (0, 1]. Default: write-up (`tau = 0.005`)."""
    projector: ProjectorConfig = field(default_factory=ProjectorConfig)
    """The write-up's additive projector (not the paper's); off unless `projector.kind` is set."""
    qplex: QplexConfig = field(default_factory=QplexConfig)
    """QPLEX's mixer options; read only with `mixer` "dmaq"."""
    qtran: QtranConfig = field(default_factory=QtranConfig)
    """QTRAN's network and loss options; read only with `mixer` "qtran"."""
    qatten: QattenConfig = field(default_factory=QattenConfig)
    """Qatten's mixer options; read only with `mixer` "qatten"."""

    @property
    def name(self) -> str:
        """The registered algorithm name with these settings, or "custom"."""
        for name, algo in ALGORITHMS.items():
            if algo.identity == self.identity:
                return name
        return "custom"

    @property
    def identity(self) -> tuple:
        """What makes the algorithm what it is: its `DEFINING_FIELDS`, of the projector only its
        kind and omega mode (its tricks are settings, like alpha)."""
        return (*(getattr(self, f) for f in DEFINING_FIELDS if f != "projector"),
                self.projector.kind, self.projector.omega)


DEFINING_FIELDS = ("mixer", "central", "central_mixer", "weighting", "double_q", "target_update", "projector")
"""The fields `--algo NAME` sets (the whole projector section included), with the preset
optimiser (`ALGORITHM_OPTIM`) and official settings (`ALGORITHM_SETTINGS`); the other shared
ones (gamma, ...) are kept."""

_WRITE_UP_PROJECTOR = dict(mixer="qmix", central=False, double_q=False, target_update="soft")
"""The write-up's code: QMIX mixer and agents, own target networks with their per-agent max,
soft target updates."""

ALGORITHMS: dict[str, AlgoConfig] = {
    "ow-qmix": AlgoConfig(mixer="qmix", central=True, weighting="ow"),
    "cw-qmix": AlgoConfig(mixer="qmix", central=True, weighting="cw"),
    "qmix": AlgoConfig(mixer="qmix", central=False, weighting="none"),
    "vdn": AlgoConfig(mixer="vdn", central=False, weighting="none"),
    "iql": AlgoConfig(mixer="none", central=False, weighting="none"),
    # The paper's ablation: the OW weighting alone, targets from QMIX's own target networks
    # (official `qmix_w.yaml`, `hysteretic_qmix: True`) ...
    "ow-qmix-no-central": AlgoConfig(mixer="qmix", central=False, weighting="ow"),
    # ... and its CW twin (official `q_learner_w.py`, `hysteretic_qmix: False`): the greedy
    # joint action's value is QMIX's own target Q_tot instead of Q-hat*'s.
    "cw-qmix-no-central": AlgoConfig(mixer="qmix", central=False, weighting="cw"),
    # From the write-up, not the paper: its code (constant omega = 1, plain MSE) ...
    "projector-qmix": AlgoConfig(**_WRITE_UP_PROJECTOR, weighting="none",
                                 projector=ProjectorConfig(kind="state", omega="constant")),
    # ... its text (advantage omega, the loss on greedy transitions only) ...
    "projector-qmix-text": AlgoConfig(**_WRITE_UP_PROJECTOR, weighting="greedy-only",
                                      projector=ProjectorConfig(kind="state", omega="advantage")),
    # ... and its state-action extension (9.1) on the code's settings.
    "projector-qmix-sa": AlgoConfig(**_WRITE_UP_PROJECTOR, weighting="none",
                                    projector=ProjectorConfig(kind="state-action", omega="constant")),
    # QPLEX (Wang et al., ICLR 2021) as the official repository ships it (`qplex.yaml`: mixer
    # "dmaq", double Q, its own target networks, the plain TD loss of `dmaq_qatten_learner.py`).
    "qplex": AlgoConfig(mixer="dmaq", central=False, weighting="none"),
    # QTRAN-base (Son et al., ICML 2019) as `qtran.yaml` configures it: its own target networks,
    # double Q, L_td + opt_loss * L_opt + nopt_min_loss * L_nopt.
    "qtran": AlgoConfig(mixer="qtran", central=False, weighting="none"),
    # Qatten (Yang et al., 2020) with `qatten_learner.py`: double Q (as every value-based config
    # of the repository), the TD loss plus the attention regulariser.
    "qatten": AlgoConfig(mixer="qatten", central=False, weighting="none"),
    # OW- and CW-QMIX with the attention central mixer (`central_mixer: "atten"`).
    "ow-qmix-atten": AlgoConfig(mixer="qmix", central=True, central_mixer="atten", weighting="ow"),
    "cw-qmix-atten": AlgoConfig(mixer="qmix", central=True, central_mixer="atten", weighting="cw"),
}
"""The algorithms `--algo` accepts. Defaults of the other fields are shared."""
