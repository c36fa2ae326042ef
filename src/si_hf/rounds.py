"""The round loop: one round reads top to bottom in `SelfImprovementRun.run_round`.

    choose difficulties -> sample prompts -> label -> filter -> stage -> train -> evaluate -> publish

Round 0 trains each member from scratch (or adapts a pretrained Llama) on D_0. Round r >= 1 picks
its difficulties from the schedule (`si_hf.schedules`), samples N_r prompts per member from that
member's own seed stream, labels them greedily with the round r-1 models (every member votes when
majority vote is on), filters the labels without ground truth, stages them, trains member m on D_0
and its rounds 1..r (newest at 50%), evaluates on held-out prompts and publishes dataset +
checkpoint + metrics as one atomic round in the store.

Resumability: a round is the unit of work. The store holds every completed round; the labels of
the round in progress are staged under `<output_dir>/work/` as soon as they exist, so a rerun
after a crash skips straight to training. Training is seeded from (seed, round, member), so the
rerun publishes the same artifacts an uninterrupted run would. Where a round lives (this store or
the run it was resumed from) is `si_hf.history.RoundHistory`'s business.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import PartialState
from datasets import Dataset

import si_hf  # noqa: F401  (registers SI-Llama with the Auto classes)
from si_hf.carries import carry_accuracy, carry_problems, evaluate_carries
from si_hf.collator import PromptCompletionCollator
from si_hf.configs import ModelArguments, SelfImproveArguments, SITrainingArguments, TaskArguments
from si_hf.distributed import whole_models
from si_hf.evaluation import EvalResult, build_eval_sets, evaluate_model, format_table, memorised_mistakes
from si_hf.experiment import config_snapshot
from si_hf.filtering import label_member, vote_variant_settings, voting
from si_hf.history import RoundHistory, check_sources, recorded_sources, resume_sources
from si_hf.labeling import label_across_processes
from si_hf.layout import TRAINER, RunPaths
from si_hf.modeling import add_lora, build_model, merge_lora
from si_hf.precision import decode_dtype, precision_overrides
from si_hf.publishing.pages import RunPages
from si_hf.registry import load_plugins
from si_hf.round_data import (
    label_settings,
    round_labels,
    same_label_settings,
    sample_round_prompts,
    truth_predictions,
    wrong_labels,
)
from si_hf.schedules import evaluate_widening, round_difficulties
from si_hf.store import open_store
from si_hf.tokenization import get_tokenizer
from si_hf.tracking import RunTracking
from si_hf.training import round_mix, round_seed, round_training_args, train_round
from si_hf.validation import describe_registered, validate

logger = logging.getLogger("si_hf")


@dataclasses.dataclass
class Labels:
    """A round's kept labels for one member, and what labelling them measured (empty for round 0)."""

    dataset: Dataset | None = None
    info: dict = dataclasses.field(default_factory=dict)


class SelfImprovementRun:
    def __init__(self, task_args, si, model_args, train_args):
        self.task = validate(task_args, si, model_args, train_args)  # every argument, before any work
        si = vote_variant_settings(si)  # more_data: one model, k x the prompts; shared_data: consensus labels
        self.task_args, self.si, self.model_args = task_args, si, model_args
        self.d0 = self.task.parse_difficulty(task_args.d0)
        self.tokenizer = get_tokenizer(model_args.tokenizer_name or self.task.tokenizer_name)
        if not torch.cuda.is_available() and not train_args.use_cpu:
            # Trainer only sets up multi-process CPU runs (torchrun / accelerate launch) with use_cpu.
            train_args = dataclasses.replace(train_args, use_cpu=True)
        self.train_args = train_args
        train_args.device  # noqa: B018  (initialises the distributed state the Trainer will share)
        self.state = PartialState()
        setup_logging(train_args, self.state)
        self.output_dir = Path(train_args.output_dir)
        self.paths = RunPaths(self.output_dir)
        self.tracking = RunTracking(train_args, si, self.output_dir, self.state.is_main_process)
        self.store = open_store(
            str(self.output_dir),
            hub_dataset_id=si.hub_dataset_id,
            hub_model_id=train_args.hub_model_id,
            overwrite_hub_revision=si.overwrite_hub_revision,
            hub_private=bool(train_args.hub_private_repo),
            num_members=si.num_members,
            pages=RunPages(),
        )
        self.history: RoundHistory | None = None  # read from the store once the run holds it
        self.collator = PromptCompletionCollator(
            self.tokenizer, pack_length=si.pack_length, completion_only_loss=si.completion_only_loss
        )
        self.precision = precision_overrides(si.precision)
        self.decode = {
            "cache_implementation": si.label_cache_implementation,
            "decode_dtype": decode_dtype(si.decode_precision),
        }
        self._models: dict[int, tuple[int, object]] = {}  # member -> (round, its latest model in memory)
        progress = self.state.is_main_process and not train_args.disable_tqdm
        self.evaluator = Evaluator(
            self.task, si, self.tokenizer, task_args.data_seed_base, self.decode, progress
        )

    # ---- the loop ----
    def run(self) -> None:
        self.store.local.claim()  # every process: an output_dir that is not a store is refused by all
        # One run per output directory: the main process holds the lock until the run ends.
        with self.store.local.lock() if self.state.is_main_process else contextlib.nullcontext():
            first, last = self.preflight()
            for r in range(first, last + 1):
                self.run_round(r)

    def preflight(self) -> tuple[int, int]:
        """Everything that can fail before any work does: damaged or missing rounds, a changed
        experiment, rounds the task cannot hold, the Hub. Returns the rounds to run."""
        if self.state.is_main_process:
            self.store.local.recover()
        self.state.wait_for_everyone()
        self.store.verify()
        cache = str(self.paths.resume_cache)
        if self.si.resume_from:
            sources = resume_sources(self.si.resume_from, self.si.num_members, cache)
        else:  # a run that started from someone else's round keeps starting from it
            sources = recorded_sources(self.store, self.si.num_members, cache)
        check_sources(sources, self.task, self.tokenizer, self.model_args)
        self.history = RoundHistory(self.store, sources, self.si.num_members)
        self.history.check_contiguous()
        snapshot = config_snapshot(self.task_args, self.si, self.model_args, self.train_args)
        self.history.check_config(snapshot, allow_change=self.si.allow_config_change)
        first, last = self.si.round_range(self.history.first_incomplete())
        if first > 0 and not self.history.exists(first - 1):
            raise ValueError(
                f"round {first - 1} is missing in {self.output_dir} (needed to start round {first}); "
                f"completed rounds: {self.store.completed_rounds()}"
            )
        if self.state.is_main_process:
            self.history.write_metrics(self.paths.metrics)  # rebuilt from the store: never stale
        self.store.sync()
        if self.state.is_main_process:  # refuse now, not after training, a round the Hub already holds
            self.store.check_hub_writable(
                {r: self.history.missing_members(r) for r in range(first, last + 1)}
            )
        return first, last

    def run_round(self, r: int) -> None:
        todo = self.history.missing_members(r)
        if not todo:
            logger.info("round %d is already complete in the store; skipping", r)
            return
        # choose difficulties: D_0's levels in round 0, the schedule's next ones after it
        levels, trained = self.choose_difficulties(r)
        # Every member's labels come from the round r-1 models, so label all before training any.
        labels = {m: Labels() if r == 0 else self.staged_labels(r, m, levels) for m in todo}
        made: dict[int, Labels] = {}  # vote_variant shared_data: member 0's labels, made once for all
        for m in todo:
            if r > 0 and labels[m] is None:
                src = label_member(self.si, m)  # m, or member 0 under vote_variant shared_data
                if src not in made:
                    # sample prompts from member src's own seed stream, never from the evaluation split
                    prompts, difficulties = self.sample_prompts(r, src, levels)
                    # label them greedily with the round r-1 model(s), with no ground truth
                    predictions, labelers, seconds = self.label(r, src, prompts)
                    # filter per difficulty level, without ground truth
                    made[src] = self.filter(r, src, prompts, difficulties, predictions, labelers, seconds)
                labels[m] = made[src]
                # stage the kept labels: a crash from here on never labels them again
                self.stage(r, m, labels[m], levels)
        for m in todo:
            # train member m on D_0 and its rounds 1..r, the newest at newest_round_probability
            model, training = self.train(r, m, labels[m].dataset)
            # evaluate on held-out prompts, from the easiest level to eval_beyond past the frontier
            t0 = time.perf_counter()
            result = self.evaluator.evaluate(model, trained)
            # and on the wrong labels it has trained on, round by round (figure 26)
            result.memorised = self.memorised(model, r, m, labels[m].dataset)
            # and on held-out sums by their longest carry chain (appendix B.8), when asked
            result.carries = self.evaluator.carries(model)
            training["eval_seconds"] = time.perf_counter() - t0
            # publish dataset + checkpoint + metrics as one atomic round (the Hub too, when asked)
            self.publish(r, m, model, labels[m], result, training, trained)

    # ---- the phases ----
    def choose_difficulties(self, r: int) -> tuple[list, list[str]]:
        """The levels round r labels, and every difficulty key trained by the end of round r."""
        key = self.task.difficulty_key
        if r == 0:
            levels = self.task.d0_difficulties(self.d0)
            return levels, [key(d) for d in levels]
        prev = self.history.trained(r - 1)
        levels = round_difficulties(self.task, self.si, self.d0, r, prev, self.history.mean_accuracy(r - 1))
        logger.info("round %d labels difficulties %s", r, [key(d) for d in levels])
        return levels, list(dict.fromkeys(prev + [key(d) for d in levels]))

    def staged_labels(self, r: int, m: int, levels: list) -> Labels | None:
        staged = self.store.local.staged_labels(r, m)
        if staged is None:
            return None
        if same_label_settings(staged[1].get("settings"), label_settings(self.task, self.si, levels)):
            return Labels(*staged)
        logger.warning("round %d member %d: labelling settings changed since staging; labelling again", r, m)
        return None

    def sample_prompts(self, r: int, m: int, levels: list) -> tuple[list[str], list[str]]:
        n, seed = self.si.examples_per_round, self.task_args.data_seed_base
        return sample_round_prompts(self.task, n, levels, seed=seed, round=r, member=m)

    def label(self, r: int, m: int, prompts: list[str]) -> tuple[list[list], list[int], float]:
        """Predictions of every labelling model (all members when voting, else member m alone); under
        `label_source: truth` the true answers stand in for each one's."""
        labelers = list(range(self.si.num_members)) if voting(self.si.filters) else [m]
        t0 = time.perf_counter()
        if self.si.label_source == "truth":
            truth = truth_predictions(self.task, self.tokenizer, prompts)
            return [truth for _ in labelers], labelers, time.perf_counter() - t0
        models = [self.model(r - 1, j) for j in labelers]
        kwargs = {"batch_size": self.si.label_batch_size, "progress": not self.train_args.disable_tqdm}
        predictions = [
            label_across_processes(
                self.state, model, self.tokenizer, self.task, prompts, **kwargs, **self.decode
            )
            for model in models
        ]
        return predictions, labelers, time.perf_counter() - t0

    def filter(self, r, m, prompts, difficulties, predictions, labelers, seconds) -> Labels:
        args = (self.task, self.si, r, m, prompts, difficulties, predictions, labelers, seconds)
        return Labels(*round_labels(*args, seed=self.task_args.data_seed_base))

    def stage(self, r: int, m: int, labels: Labels, levels: list) -> None:
        settings = label_settings(self.task, self.si, levels)
        labels.info = {"levels": settings["levels"], **labels.info, "settings": settings}
        self.store.local.stage_labels(r, m, labels.dataset, labels.info)
        self.state.wait_for_everyone()

    def train(self, r: int, m: int, labels: Dataset | None) -> tuple[object, dict]:
        # whole in every process, under ZeRO-3 too: DeepSpeed shards it only while it trains
        if r == 0 and m > 0 and self.si.vote_variant == "shared_seed":
            return shared_round0(self, m)
        seed = round_seed(self.train_args.seed, r, m)
        with whole_models():
            if r == 0 or (self.si.round_init == "base" and self.model_args.use_peft):
                # round 0, or a restarted LoRA round: the base (pretrained, or from scratch) anew
                model = build_model(self.model_args, self.tokenizer, seed=seed)
            else:
                # round_init continue: round r-1's model; base: the round-0 model again
                model = self.model(r - 1 if self.si.round_init == "continue" else 0, m)
                if self.model_args.use_peft:
                    model = add_lora(model, self.model_args, seed=seed)
        rounds = {k: labels if k == r else self.history.dataset(k, m) for k in range(1, r + 1)}
        mix = round_mix(self, r, m, rounds)
        work = str(self.store.local.work_dir(r, m) / TRAINER)
        args = round_training_args(self.train_args, self.si, r, m, work, self.precision)
        trackers = self.tracking.callbacks(r, m, self.history)
        model, training = train_round(model, args, mix, self.collator, self.tokenizer, trackers)
        # LoRA: label, evaluate and publish the merged model in the base's dtype, exactly what a
        # resumed run reloads from the store.
        model = merge_lora(model)
        self._models[m] = (r, model)
        if labels is not None:
            self.history.remember_dataset(r, m, labels)
        return model, training

    def memorised(self, model, r: int, m: int, current: Dataset | None) -> dict[str, dict]:
        """Figure 26: member m's model of round r on the wrong labels of its rounds 1..r."""
        if r == 0 or self.si.memorised_eval_examples == 0:
            return {}
        datasets = {k: current if k == r else self.history.dataset(k, m) for k in range(1, r + 1)}
        return self.evaluator.memorised(model, datasets)

    def publish(self, r, m, model, labels: Labels, result: EvalResult, training: dict, trained) -> None:
        metrics = {
            **result.to_dict(),
            "round": r,
            "member": m,
            **training,
            **{k: v for k, v in labels.info.items() if k not in ("levels", "settings")},
        }
        if self.state.is_main_process:
            source = self.history.sources[m] if self.history.sources else None
            info = round_info(self, r, m, labels.info, trained, source)
            self.store.publish_round(
                r,
                m,
                dataset=labels.dataset,
                model=model,
                tokenizer=self.tokenizer,
                metrics=metrics,
                info=info,
            )
            self.tracking.log_round(m, metrics)
            self.store.local.clear_work(r, m)
            self.history.write_metrics(self.paths.metrics)
            kept = (
                f"kept {info['n_kept']}/{info['n_generated']} labels, data accuracy {info['data_accuracy']}"
                if r > 0
                else "supervised on D_0"
            )
            print(f"\nround {r} member {m}: {kept}")
            print(format_table(self.history.all_metrics()))
        self.state.wait_for_everyone()

    # ---- helpers ----
    def model(self, r: int, m: int):
        """Member m's model after round r: in memory when this process made it, else from the store."""
        if self._models.get(m, (None,))[0] != r:
            attn, device = self.model_args.attn_implementation, self.train_args.device
            with whole_models():  # labelling needs the whole model in every process, under ZeRO-3 too
                self._models[m] = (r, self.history.load_model(r, m, device=device, attn_implementation=attn))
        return self._models[m][1]


def shared_round0(run: SelfImprovementRun, m: int) -> tuple[object, dict]:
    """vote_variant shared_seed (B.2.4): member m starts from member 0's round-0 model (a copy; one
    initial training for all members), with member 0's training record and no time of its own."""
    model = copy.deepcopy(run.model(0, 0))
    training = {k: v for k, v in run.history.metrics(0, 0).items() if k.startswith("train_")}
    run._models[m] = (0, model)
    return model, {**training, "train_seconds": 0.0, "copied_from_member": 0}


class Evaluator:
    """A run's evaluations: held-out exact match per level (the sets built once per level and kept)
    and the wrong training labels a model still reproduces (figure 26)."""

    def __init__(self, task, si, tokenizer, seed: int, decode: dict, progress: bool):
        self.task, self.si, self.tokenizer, self.seed = task, si, tokenizer, seed
        self.decode = {"batch_size": si.eval_batch_size, "progress": progress, **decode}
        self._eval_sets: dict = {}
        self._carry_rows: list[dict] | None = None

    def evaluate(self, model, trained: list[str]) -> EvalResult:
        """Exact match from the easiest level to eval_beyond past the frontier; with eval_until_below,
        then one level (ring) further at a time while the last one is at >= that floor, up to
        eval_max_beyond past the frontier (figure 9's margin is never cut off by the window)."""
        return evaluate_widening(
            self.task,
            trained,
            lambda levels: self.score(model, levels),
            beyond=self.si.eval_beyond,
            floor=self.si.eval_until_below,
            cap=self.si.eval_max_beyond,
        )

    def eval_sets(self, levels: list) -> dict:
        """The held-out (prompts, answers) of `levels`, each level built once per run."""
        keys = {self.task.difficulty_key(lv): lv for lv in levels}
        missing = [lv for k, lv in keys.items() if k not in self._eval_sets]
        if missing:
            n = self.si.eval_examples_per_difficulty
            self._eval_sets.update(build_eval_sets(self.task, missing, num_per_difficulty=n, seed=self.seed))
        return {k: v for k, v in self._eval_sets.items() if k in keys}

    def score(self, model, levels: list) -> EvalResult:
        return evaluate_model(model, self.tokenizer, self.task, self.eval_sets(levels), **self.decode)

    def carries(self, model) -> dict[str, dict[str, float]]:
        """`eval_carry_sets`: exact match by operand length and longest carry chain; the problems are
        built once, held out from training (eval split) and from this run's own evaluation prompts."""
        lengths = self.si.eval_carry_sets
        if not lengths:
            return {}
        if self._carry_rows is None:
            exclude = {p for prompts, _ in self.eval_sets(lengths).values() for p in prompts}
            n = self.si.eval_carry_per_chain
            self._carry_rows = carry_problems(self.task, lengths, n, seed=self.seed, exclude=exclude)
        return carry_accuracy(
            evaluate_carries(model, self.tokenizer, self.task, self._carry_rows, **self.decode)
        )

    def memorised(self, model, datasets: dict) -> dict[str, dict]:
        """The model on up to memorised_eval_examples wrong labels of each round in `datasets`."""
        mistakes = wrong_labels(datasets, self.si.memorised_eval_examples)
        return memorised_mistakes(model, self.tokenizer, self.task, mistakes, **self.decode)


def round_info(run: SelfImprovementRun, r: int, m: int, label_info: dict, trained: list[str], source) -> dict:
    """What a round records about itself in its marker and cards: task, filter, counts, config."""
    d0_levels = [run.task.difficulty_key(d) for d in run.task.d0_difficulties(run.d0)]
    return {
        "task": run.task.name,
        "round": r,
        "member": m,
        "filter": "+".join(run.si.filters) if r > 0 else "supervised",
        "levels": label_info.get("levels", d0_levels),
        "trained": trained,
        "n_generated": label_info.get("n_generated"),
        "n_kept": label_info.get("n_kept"),
        "data_accuracy": label_info.get("data_accuracy"),
        "generated_by": label_info.get("generated_by"),
        "config": config_snapshot(run.task_args, run.si, run.model_args, run.train_args),
        # lets resolve_resume find the rounds this run did not make itself
        "resumed_from": (
            {"spec": source.source, "member": m if run.si.num_members > 1 else None} if source else None
        ),
    }


def setup_logging(train_args, state: PartialState) -> None:
    """si-hf logs INFO on the main process and WARNING on the others; `datasets` and `transformers`
    follow `log_level` / `log_level_replica` (as the HF recipe repos do)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO if state.is_main_process else logging.WARNING)
    level = train_args.get_process_log_level()
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)


def run(task_args, si, model_args, train_args) -> SelfImprovementRun:
    runner = SelfImprovementRun(task_args, si, model_args, train_args)
    runner.run()
    return runner


def _config_file(path: str) -> dict:
    """The --config recipe as a mapping, or an error naming the file and what is wrong with it."""
    import yaml

    where = Path(path)
    if not where.exists():
        raise ValueError(f"--config: {path!r} does not exist; expected a YAML recipe")
    if not where.is_file():
        raise ValueError(f"--config: {path!r} is a folder; expected a YAML recipe file")
    try:
        config = yaml.safe_load(where.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"--config: {path!r} is not UTF-8 text ({e}); expected a YAML recipe") from None
    except yaml.YAMLError as e:
        raise ValueError(f"--config: {path!r} is not valid YAML ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(
            f"--config: {path!r} holds {type(config).__name__}; expected a mapping of option: value"
        )
    return config


def checked_argv(argv) -> list[str]:
    """The command line with `--key=value` split, refused when a flag is given twice or --config names
    no readable YAML mapping (TrlParser would fail on each with an error that names nothing)."""
    import sys

    out = []
    for token in list(sys.argv[1:] if argv is None else argv):
        out += token.split("=", 1) if token.startswith("--") and "=" in token else [token]
    flags = [(t, out[i + 1] if i + 1 < len(out) else "") for i, t in enumerate(out) if t.startswith("--")]
    names = [f for f, _ in flags]
    for name in dict.fromkeys(f for f in names if names.count(f) > 1):
        values = ", ".join(v for f, v in flags if f == name)
        raise ValueError(f"{name} is given more than once ({values}); give each flag once")
    if "--config" in out:
        i = out.index("--config")
        if i + 1 >= len(out) or out[i + 1].startswith("--"):
            raise ValueError(
                "--config needs the path of a YAML recipe, e.g. --config recipes/copy/config_cpu.yaml"
            )
        _config_file(out[i + 1])
    return out


def _plugins_named(argv: list[str]) -> list[str]:
    """The `plugins` a command line names, on it (`--plugins a b`) or in its --config YAML: they are
    imported before the parser is built, so --help and the validation know what they register."""
    import argparse

    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--plugins", nargs="*", default=None)
    known, _ = pre.parse_known_args(argv)
    found = []
    if known.config is not None:
        plugins = _config_file(known.config).get("plugins")
        found += [plugins] if isinstance(plugins, str) else list(plugins or [])
    return found + list(known.plugins or [])


def parse_args(argv=None):
    """The run's four argument classes from a YAML recipe and CLI overrides, validated (`si_hf.validation`)."""
    from trl import TrlParser

    argv = checked_argv(argv)
    load_plugins(_plugins_named(argv))
    parser = TrlParser((TaskArguments, SelfImproveArguments, ModelArguments, SITrainingArguments))
    describe_registered(parser)
    args = parser.parse_args_and_config(argv)
    validate(*args)
    return args


def main(argv=None) -> SelfImprovementRun:
    return run(*parse_args(argv))
