"""Which code trained each trial of a report and which code ran its final evaluation, and the
trials a reader should not trust as the rest: evaluated on other code than they were trained
with, on code that differed from its commit, or on another commit than the other trials.

Reads each run's `provenance.jsonl` (`wqmix.run_dir.read_provenance`; runs from before it
existed are reconstructed from `meta.json` and `meta-resume-*.json`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from pathlib import Path
from typing import Any, Callable, Mapping

from wqmix.run_dir import checkout_of, git_output, read_provenance

TRAINING_EVENTS = ("train", "resume")


@dataclasses.dataclass(frozen=True)
class Code:
    """A commit and whether the code that ran differed from it."""

    commit: str | None
    dirty: bool | None
    """The package's own files (or pyproject.toml) differed from the commit. None: unknown, a
    record from before `code_dirty` existed whose tree differed (results written into the tree
    made it so too, and the two were not told apart then)."""

    @staticmethod
    def of(record: Mapping[str, Any]) -> Code:
        git = record.get("git") or {}
        dirty = git["code_dirty"] if "code_dirty" in git else (False if git.get("dirty") is False else None)
        return Code(git.get("commit"), dirty)

    def __str__(self) -> str:
        state = {True: " (dirty)", False: "", None: " (tree dirty?)"}[self.dirty]
        return (self.commit or "unknown")[:7] + state


@dataclasses.dataclass(frozen=True)
class TrialProvenance:
    trained_on: list[Code]
    """Every call that trained (first call, resumes), in order, without repeats."""
    evaluated_on: Code | None
    """The call that wrote the summary's final evaluation (None: no record of it)."""
    reconstructed: bool
    """From meta files: which resume trained and which only evaluated is not recorded; the last
    call is taken as the one that evaluated."""
    machines: list[str]
    modules: frozenset[str] | None = None
    """The package's files its calls had loaded (`loaded_modules`, over every record); None where a
    record does not list them (older runs): then the whole package counts as its code."""


def trial_provenance(run_dir: Path) -> TrialProvenance:
    records = read_provenance(run_dir)
    reconstructed = any(r.get("reconstructed") for r in records)
    final = [r for r in records if r["event"] == "final-evaluation"]
    if final:
        final_steps = final[-1].get("env_steps")
        evaluated = Code.of(final[-1])
    else:
        final_steps, evaluated = None, Code.of(records[-1]) if reconstructed and records else None
    trained: list[Code] = []
    for r in records:
        # A resume that started at the final step trained nothing (it only evaluated again).
        if r["event"] in TRAINING_EVENTS and not (final_steps is not None and r.get("from_env_steps") == final_steps):
            code = Code.of(r)
            if code not in trained:
                trained.append(code)
    machines = sorted({(r.get("machine") or {}).get("hostname") or "" for r in records} - {""})
    listed = [r.get("modules") for r in records]
    modules = frozenset().union(*listed) if listed and all(m is not None for m in listed) else None
    return TrialProvenance(trained, evaluated, reconstructed, machines, modules)


FLAGS = {
    "no eval record": "no record of the code that ran the final evaluation",
    "eval dirty": "the final evaluation ran on code that differed from its commit",
    "eval tree dirty?": "the final evaluation ran from a tree that differed from its commit (in code or only in "
                        "results: not recorded then)",
    "train dirty": "some training ran on code that differed from its commit",
    "train tree dirty?": "some training ran from a tree that differed from its commit (in code or only in results: "
                         "not recorded then)",
    "eval != train": "the final evaluation ran on another commit than (some of) the training, with other code",
    "eval != others": "the final evaluation ran on another commit than most trials' final evaluations, with other "
                      "code",
}
"""Each flag a trial can get, and what it means (the report's legend)."""


SameCode = Callable[[str | None, str | None, frozenset[str] | None], bool]
"""Whether two commits hold the same code (commit ids, possibly None: unknown) in the package files
given (paths relative to the package's folder; None: all of them) and pyproject.toml."""


def same_commit(a: str | None, b: str | None, modules: frozenset[str] | None = None) -> bool:
    """Two commits hold the same code only when they are the same commit: what is known without git."""
    return a == b


def git_same_code(source: Path | None = None) -> SameCode:
    """`SameCode` read from the git checkout holding the package at `source` (default: this one):
    two commits hold the same code when `git diff` finds no change between them in the package
    files given (those a trial loaded; all of the package's when not known) or `pyproject.toml`,
    so commits that differ only in results written into the tree, in docs, or in parts of the
    package the trial never ran (a report's writer, say) are one code. Anything git cannot tell (no
    checkout, a commit it does not have, an unknown commit) counts as different, so it is still
    flagged."""
    source = Path(source or Path(__file__).resolve().parents[1])

    @functools.cache
    def checkout() -> Path | None:
        return checkout_of(source, tracked=True)  # only a checkout that tracks the package can compare its code

    @functools.cache
    def same(a: str | None, b: str | None, modules: frozenset[str] | None = None) -> bool:
        if a == b:
            return True
        root = checkout() if a is not None and b is not None else None
        if root is None:
            return False
        paths = [str(source / m) for m in sorted(modules)] if modules is not None else [str(source)]
        changed = git_output(["diff", "--name-only", a, b, "--", *paths, "pyproject.toml"], root)
        return changed is not None and not changed.strip()

    return same


def flags(trial: TrialProvenance, common: Code | None, same_code: SameCode = same_commit) -> list[str]:
    """The `FLAGS` that apply to a trial; empty when none does. Two commits count as one where
    `same_code` says they hold the same code."""
    evaluated = trial.evaluated_on
    if evaluated is None:
        return ["no eval record"]
    out = []
    if evaluated.dirty is not False:
        out.append("eval dirty" if evaluated.dirty else "eval tree dirty?")
    if any(code.dirty for code in trial.trained_on):
        out.append("train dirty")
    elif any(code.dirty is None for code in trial.trained_on):
        out.append("train tree dirty?")
    if any(not same_code(code.commit, evaluated.commit, trial.modules) for code in trial.trained_on):
        out.append("eval != train")
    if common is not None and not same_code(evaluated.commit, common.commit, trial.modules):
        out.append("eval != others")
    return out


def provenance_section(run_dirs: Mapping[str, Path], same_code: SameCode | None = None
                       ) -> tuple[list[str], dict[str, Any]]:
    """The report's provenance section (markdown lines) and its data, one entry per trial.
    `same_code` (default: `git_same_code()`, read from this package's checkout) tells which
    different commits hold the same code."""
    same_code = same_code or git_same_code()
    trials = {name: trial_provenance(path) for name, path in run_dirs.items()}
    commits = collections.Counter(t.evaluated_on.commit for t in trials.values() if t.evaluated_on is not None)
    common = Code(commits.most_common(1)[0][0], False) if commits else None
    lines = ["## Provenance", "",
             "The code behind each trial: the commits that trained it and the one whose code ran the final "
             "evaluation in its summary.json (from its `provenance.jsonl`; for trials from before that file, "
             "from `meta.json` and `meta-resume-*.json`, marked †, where the last call is taken as the one "
             "that evaluated). \"(dirty)\": the package's code differed from the commit; \"(tree dirty?)\": "
             "the tree differed from the commit, and the record, older than that distinction, does not say "
             "whether in code or only in results written into it. Commits between which the trial's code "
             "(the package's modules its records say it loaded; the whole package for older records) and "
             "pyproject.toml did not change (only results, docs or code it never ran did) count as one code "
             "for the flags.", "",
             "| trial | trained on | final evaluation on | machines | flags |", "|---|---|---|---|---|"]
    data: dict[str, Any] = {}
    flagged = []
    for name, trial in trials.items():
        found = flags(trial, common, same_code)
        if found:
            flagged.append(name)
        lines.append(f"| {name}{' †' if trial.reconstructed else ''} | {', '.join(map(str, trial.trained_on)) or '-'} "
                     f"| {trial.evaluated_on or '-'} | {', '.join(trial.machines) or '-'} | {', '.join(f'`{f}`' for f in found) or '-'} |")
        data[name] = {"trained_on": [dataclasses.asdict(c) for c in trial.trained_on],
                      "evaluated_on": dataclasses.asdict(trial.evaluated_on) if trial.evaluated_on else None,
                      "reconstructed": trial.reconstructed, "machines": trial.machines, "flags": found}
    lines += ["", (f"**{len(flagged)} of {len(trials)} trials flagged**: {', '.join(flagged)}." if flagged
                   else f"No trial flagged ({len(trials)} trials)."), ""]
    used = sorted({f for name in flagged for f in data[name]["flags"]}, key=list(FLAGS).index)
    lines += [f"- `{f}`: {FLAGS[f]}" + (f" ({str(common.commit)[:7]})" if f == "eval != others" and common else "")
              for f in used] + ([""] if used else [])
    return lines, {"trials": data, "flagged": flagged, "common_commit": common.commit if common else None}
