"""`wqmix eval RUN_DIR`: greedy test episodes of a saved run's policy, without training."""

from __future__ import annotations

import argparse
from pathlib import Path

from wqmix.cli.common import Parser, integer


def _image_file(text: str) -> Path:
    if Path(text).suffix.lower() not in (".png", ".gif"):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: must end with .png or .gif")
    return Path(text)


def add_parser(commands) -> Parser:
    parser = commands.add_parser(
        "eval", help="greedy test episodes of a saved run's policy",
        description="Greedy (epsilon = 0) test episodes of every seed of a run, from its latest checkpoint or the "
                    "one\nat env step STEP, without training. Prints a table and writes RUN_DIR/eval-STEP.json.")
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run directory of `wqmix train`")
    parser.add_argument("--episodes", metavar="N", type=integer(1),
                        help="episodes per seed (default: the run's log.test_episodes)")
    parser.add_argument("--checkpoint", metavar="STEP", type=integer(0),
                        help="the checkpoint at env step STEP (default: the latest)")
    parser.add_argument("--render", metavar="FILE", type=_image_file,
                        help="also play one greedy episode of the first seed and draw it: FILE.png, a grid of up "
                             "to 16 evenly spaced frames; FILE.gif, an animation of every step. Predator-prey, "
                             "SMAX and MPE spread (needs matplotlib; GIFs also Pillow)")
    parser.set_defaults(run=run)
    return parser


def run(parser: Parser, argv: list[str]) -> int:
    args = parser.parse_intermixed_args(argv)
    from wqmix.driver import eval_run

    try:
        eval_run(args.run_dir, episodes=args.episodes, checkpoint=args.checkpoint, render=args.render,
                 command=["wqmix", "eval", *argv])
    except (OSError, ValueError, ImportError) as e:  # ConfigError and EnvCheckError are ValueErrors
        return parser.fail(e)
    return 0
