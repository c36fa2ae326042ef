"""The round loop: label -> filter -> publish -> train -> evaluate.

Round 0 trains each member from scratch (or adapts a pretrained Llama) on D_0. Round r >= 1 picks
its difficulties from the schedule, samples N_r prompts per member from that member's own seed
stream, labels them greedily with the round r-1 models (every member votes when majority vote is
on), filters the labels without ground truth, trains member m on D_0 and its rounds 1..r (newest
at 50%), evaluates on held-out prompts and publishes dataset + checkpoint + metrics as one atomic
round in the store.

Resumability: a round is the unit of work. The store holds every completed round; the labels of
the round in progress are staged under `<output_dir>/work/` as soon as they exist, so a rerun
after a crash skips straight to training. Training is seeded from (seed, round, member), so the
rerun publishes the same artifacts an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from datasets import Dataset, Features, List, Value, load_from_disk
from transformers import AutoModelForCausalLM, Trainer

import si_hf  # noqa: F401  (registers SI-Llama with the Auto classes)
from si_hf.collator import PromptCompletionCollator
from si_hf.configs import ModelArguments, SelfImproveArguments, SITrainingArguments, TaskArguments
from si_hf.data import d0_dataset, mix_rounds
from si_hf.evaluation import build_eval_sets, eval_difficulties, evaluate_model, format_table
from si_hf.filtering import apply_filters
from si_hf.labeling import label
from si_hf.modeling import add_lora, build_model, merge_lora
from si_hf.store import open_store, resolve_resume
from si_hf.tasks import get_task
from si_hf.tokenization import get_tokenizer

logger = logging.getLogger("si_hf")

# What a staged round's labels depend on besides the round itself: changing one relabels.
LABEL_SETTINGS = (
    "examples_per_round",
    "filters",
    "length_filter_tau",
    "num_members",
    "vote_threshold",
    "vote_labels",
    "verifier_checks",
    "label_batch_size",
)
ROUND_FEATURES = Features(
    {
        "prompt": Value("string"),
        "completion": Value("string"),
        "difficulty": Value("string"),
        "round": Value("int64"),
        "generated_by": Value("string"),
        "filter": Value("string"),
        "votes": Value("int64"),
        # the label ended with EOS; only filters: [none] keeps labels that did not (their text up to
        # the prompt's length bound)
        "finished": Value("bool"),
        # voting rounds: the members whose own decoded label is this one (the labelling member alone
        # otherwise)
        "agreeing_members": List(Value("int64")),
        # the training target (completion + EOS) is the true answer; measured, never used to filter
        "oracle_correct": Value("bool"),
    }
)


def round_rows(
    task,
    r: int,
    prompts: list[str],
    difficulties: list[str],
    results: list,
    *,
    generated_by: str,
    filter_name: str,
    member: int,
) -> dict[str, list]:
    """The kept rows of round r, as columns of `ROUND_FEATURES`, from the filter results per level.

    `results` are `FilterResult`s of consecutive spans of `prompts`, in order."""
    keep = [k for res in results for k in res.keep]
    if len(keep) != len(prompts):
        raise ValueError(f"{len(keep)} filter decisions for {len(prompts)} prompts: expected one each")
    labels = [x for res in results for x in res.labels]
    votes = [x for res in results for x in res.votes]
    finished = [x for res in results for x in res.finished]
    agreeing = [x for res in results for x in res.agreeing]
    rows = {name: [] for name in ROUND_FEATURES}
    for i in (i for i, kept in enumerate(keep) if kept):
        rows["prompt"].append(prompts[i])
        rows["completion"].append(labels[i])
        rows["difficulty"].append(difficulties[i])
        rows["round"].append(r)
        rows["generated_by"].append(generated_by)
        rows["filter"].append(filter_name)
        rows["votes"].append(int(votes[i]))
        rows["finished"].append(bool(finished[i]))
        rows["agreeing_members"].append(list(agreeing[i]) or [member])
        rows["oracle_correct"].append(bool(task.verify(prompts[i], labels[i])))
    return rows


# ----------------------------------------------------------------------------- schedules
def multiplication_sequence(n0: int):
    """Section 6.2: after n0 x n0, round r adds (n+1) x m and m x (n+1) with m = 1 .. n+1."""
    n = n0
    while True:
        n += 1
        for m in range(1, n + 1):
            yield sorted({(n, m), (m, n)})


def round_difficulties(
    task, si: SelfImproveArguments, d0, r: int, trained: list, prev_accuracy: dict
) -> list:
    """The difficulties round r labels, from the schedule; `trained` are the keys trained so far."""
    key = task.difficulty_key
    if si.schedule in ("multiplication", "multiplication_accelerated"):
        if not isinstance(d0, tuple):
            raise ValueError(f"schedule {si.schedule!r} needs the multiplication task, got {task.name!r}")
        seen = set(trained)
        step = next(
            todo
            for todo in ([p for p in s if key(p) not in seen] for s in multiplication_sequence(d0[0]))
            if todo
        )
        if si.schedule == "multiplication":
            return step
        unlocked = [
            task.parse_difficulty(k)
            for k, acc in prev_accuracy.items()
            if acc >= si.accelerate_threshold and k not in seen
        ]
        return sorted(unlocked) or step
    frontier = max(task.parse_difficulty(k) for k in trained)
    if si.schedule == "standard":
        return [frontier + si.difficulty_step]
    # accelerated: every level past the frontier that the last round already solves, contiguously
    chosen = []
    level = frontier + 1
    while prev_accuracy.get(key(level), 0.0) >= si.accelerate_threshold:
        chosen.append(level)
        level += 1
    return chosen or [frontier + si.difficulty_step]


def eval_levels(task, trained: list, beyond: int) -> list:
    """From the easiest level to `beyond` past the hardest trained one (a square grid for multiplication)."""
    levels = [task.parse_difficulty(k) for k in trained]
    frontier = max(max(d) if isinstance(d, tuple) else d for d in levels)
    return eval_difficulties(task, frontier, beyond=beyond)


def _spans(keys: list[str]) -> list[tuple[int, int]]:
    """[lo, hi) ranges of equal consecutive keys."""
    spans, lo = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[lo]:
            spans.append((lo, i))
            lo = i
    return spans


def check_compatible(task, si: SelfImproveArguments) -> None:
    """Task-dependent checks, run before round 0 trains rather than when round 1 needs them."""
    two_d = si.schedule.startswith("multiplication")
    if two_d != (task.name == "multiplication"):
        expected = (
            "multiplication or multiplication_accelerated"
            if task.name == "multiplication"
            else ("standard or accelerated")
        )
        raise ValueError(f"schedule: {si.schedule!r} does not fit task {task.name!r}; expected {expected}")
    if "verifier" in si.filters and not hasattr(task, "validity"):
        raise ValueError(f"filters: 'verifier' needs a maze task (move/end validity), got task {task.name!r}")


# ----------------------------------------------------------------------------- state
@dataclass
class MemberState:
    model: object | None = None  # the latest model of this member in memory ...
    round: int | None = None  # ... and the round that produced it
    rounds: dict = field(default_factory=dict)  # round -> Dataset of kept labels


class SelfImprovementRun:
    def __init__(
        self,
        task_args: TaskArguments,
        si: SelfImproveArguments,
        model_args: ModelArguments,
        train_args: SITrainingArguments,
    ):
        self.task_args, self.si, self.model_args, self.train_args = task_args, si, model_args, train_args
        self.task = get_task(task_args.task, **task_args.task_kwargs())
        self.d0 = self.task.parse_difficulty(task_args.d0)
        check_compatible(self.task, si)
        self.tokenizer = get_tokenizer(model_args.tokenizer_name or self.task.tokenizer_name)
        if not torch.cuda.is_available() and not train_args.use_cpu:
            # Trainer only sets up multi-process CPU runs (torchrun / accelerate launch) with use_cpu.
            train_args = dataclasses.replace(train_args, use_cpu=True)
            self.train_args = train_args
        train_args.device  # noqa: B018  (initialises the distributed state the Trainer will share)
        self.state = PartialState()
        self.output_dir = Path(train_args.output_dir)
        self.store = open_store(
            str(self.output_dir),
            hub_dataset_id=si.hub_dataset_id,
            hub_model_id=train_args.hub_model_id,
            overwrite_hub_revision=si.overwrite_hub_revision,
            hub_private=bool(train_args.hub_private_repo),
            num_members=si.num_members,
        )
        if train_args.hub_token:
            raise ValueError(
                "--hub_token is not used by si-hf (it would end up in logs and configs); "
                "set HF_TOKEN or run `hf auth login` instead"
            )
        if si.resume_from:
            self.sources = self._resolve_sources(si.resume_from)
        else:  # a run that started from someone else's round keeps starting from it
            self.sources = self._recorded_sources()
        self.source_round = self.sources[0].round if self.sources else -1
        self.members = [MemberState() for _ in range(si.num_members)]
        self.collator = PromptCompletionCollator(self.tokenizer)
        self._eval_sets: dict = {}
        self._configure_precision()

    def _resolve_sources(self, spec: str) -> list:
        """One published round per member to start from (a Hub round or a local round directory)."""
        cache = str(self.output_dir / "resume")
        if Path(spec).exists():  # recorded in every later round, so it must not depend on the cwd
            spec = str(Path(spec).resolve())
        if self.si.num_members == 1:
            return [resolve_resume(spec, cache_dir=cache)]
        local = Path(spec)
        if local.exists():
            return [
                resolve_resume(str(local / f"member-{m}"), cache_dir=cache)
                for m in range(self.si.num_members)
            ]
        return [resolve_resume(spec, cache_dir=cache, member=m) for m in range(self.si.num_members)]

    def _recorded_sources(self) -> list | None:
        done = self.store.completed_rounds(member=0)
        recorded = self.store.info(done[0], 0).get("resumed_from") if done else None
        if not recorded:
            return None
        cache = str(self.output_dir / "resume")
        return [
            resolve_resume(**self.store.info(done[0], m)["resumed_from"], cache_dir=cache)
            for m in range(self.si.num_members)
        ]

    # ---- bookkeeping derived from the store (never duplicated in memory) ----
    def first_incomplete_round(self) -> int:
        done = [set(self.store.completed_rounds(member=m)) for m in range(self.si.num_members)]
        start = self.source_round + 1
        r = start
        while all(r in d for d in done):
            r += 1
        return r

    def _info(self, r: int, member: int = 0) -> dict:
        if r <= self.source_round:
            return self.sources[member].info
        return self.store.info(r, member)

    def _metrics(self, r: int, member: int) -> dict:
        if r <= self.source_round:
            return self.sources[member].metrics
        return self.store.metrics(r, member)

    def trained_levels(self, r: int) -> list[str]:
        """Difficulty keys trained on by the end of round r."""
        return list(self._info(r)["trained"])

    # ---- the loop ----
    def run(self) -> None:
        first, last = self.si.round_range(self.first_incomplete_round())
        if first > 0 and not self._round_exists(first - 1):
            raise ValueError(
                f"round {first - 1} is missing in {self.output_dir} (needed to start round {first}); "
                f"completed rounds: {self.store.completed_rounds()}"
            )
        self.store.sync()
        if self.store.hub is not None and self.state.is_main_process:
            # Refuse now, not after training, when the Hub already holds a round this run would write.
            for r in range(first, last + 1):
                for m in range(self.si.num_members):
                    if r not in self.store.completed_rounds(member=m):
                        self.store.hub.check_writable(r, m, r > 0)
        for r in range(first, last + 1):
            self.run_round(r)
        work = self.output_dir / "work"
        if self.state.is_main_process and work.is_dir() and not any(work.iterdir()):
            work.rmdir()

    def _round_exists(self, r: int) -> bool:
        if r <= self.source_round:
            return r == self.source_round
        return all(r in self.store.completed_rounds(member=m) for m in range(self.si.num_members))

    def run_round(self, r: int) -> None:
        todo = [m for m in range(self.si.num_members) if r not in self.store.completed_rounds(member=m)]
        if not todo:
            logger.info("round %d is already complete in the store; skipping", r)
            return
        if r == 0:
            for m in todo:
                model = build_model(self.model_args, self.tokenizer, seed=self._seed(0, m))
                self._train_eval_publish(
                    0,
                    m,
                    model,
                    [self.task.difficulty_key(d) for d in self.task.d0_difficulties(self.d0)],
                    None,
                    {},
                )
            return
        prev_trained = self.trained_levels(r - 1)
        prev_acc = self._mean_accuracy(r - 1)
        levels = round_difficulties(self.task, self.si, self.d0, r, prev_trained, prev_acc)
        logger.info("round %d labels difficulties %s", r, [self.task.difficulty_key(d) for d in levels])
        voters = range(self.si.num_members) if "majority_vote" in self.si.filters else None
        # Every member's labels come from the round r-1 models, so label all before training any.
        labelled = {m: self._labels(r, m, levels, voters) for m in todo}
        trained = list(dict.fromkeys(prev_trained + [self.task.difficulty_key(d) for d in levels]))
        for m in todo:
            model = self._model(r - 1, m)
            if self.model_args.use_peft:
                model = add_lora(model, self.model_args, seed=self._seed(r, m))
            self._train_eval_publish(r, m, model, trained, *labelled[m])

    def _seed(self, r: int, member: int) -> int:
        return self.train_args.seed + 1000 * member + r

    # ---- labelling + filtering (staged so a crash never loses it) ----
    def _labels(self, r: int, m: int, levels: list, voters) -> tuple[Dataset, dict]:
        stage = self.output_dir / "work" / f"round-{r:03d}" / f"member-{m}" / "labels"
        settings = {
            "levels": [self.task.difficulty_key(d) for d in levels],
            **{k: getattr(self.si, k) for k in LABEL_SETTINGS},
        }
        if stage.exists():
            info = json.loads((stage.parent / "label_info.json").read_text())
            if info.get("settings") == settings:
                return load_from_disk(str(stage)), info
            logger.warning(
                "round %d member %d: labelling settings changed since the labels were staged; "
                "labelling again",
                r,
                m,
            )
        prompts, difficulties = self._round_prompts(r, m, levels)
        labelers = list(voters) if voters is not None else [m]
        models = [self._model(r - 1, j) for j in labelers]
        t0 = time.perf_counter()
        preds = [self._label(model, prompts) for model in models]
        label_seconds = time.perf_counter() - t0
        # Filters run per difficulty level: a length-filter batch that mixed 7x1 with 1x7 answers
        # would drop every short (correct) one. The level comes from the prompt, not from an answer.
        own = voters is not None and self.si.vote_labels == "own"
        results = [
            apply_filters(
                self.si.filters,
                [p[lo:hi] for p in preds] if voters is not None else preds[0][lo:hi],
                task=self.task,
                prompts=prompts[lo:hi],
                length_tau=self.si.length_filter_tau,
                vote_tau=self.si.vote_threshold,
                batch_size=self.si.label_batch_size,
                checks=self.si.verifier_checks,
                member=labelers.index(m) if own else None,
            )
            for lo, hi in _spans(difficulties)
        ]
        generated_by = f"round-{r - 1}/" + (
            "members-" + ",".join(map(str, labelers)) if voters is not None else f"member-{m}"
        )
        rows = round_rows(
            self.task,
            r,
            prompts,
            difficulties,
            results,
            generated_by=generated_by,
            filter_name="+".join(self.si.filters),
            member=m,
        )
        filter_counts = {}
        for res in results:
            for step, n in res.counts.items():
                filter_counts[step] = filter_counts.get(step, 0) + n
        ds = Dataset.from_dict(rows, features=ROUND_FEATURES)  # typed even when no label was kept
        n_kept = len(ds)
        info = {
            "levels": [self.task.difficulty_key(d) for d in levels],
            "n_generated": len(prompts),
            "n_kept": n_kept,
            "data_accuracy": (sum(rows["oracle_correct"]) / n_kept) if n_kept else None,
            "label_seconds": label_seconds,
            "label_examples_per_second": len(prompts) * len(labelers) / label_seconds
            if label_seconds
            else None,
            "filter_counts": filter_counts,
            "n_kept_unfinished": rows["finished"].count(False),
            "generated_by": generated_by,
            "settings": settings,
        }
        if self.state.is_main_process:
            tmp = stage.with_name("labels.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            ds.save_to_disk(str(tmp))
            (stage.parent / "label_info.json").write_text(json.dumps(info, indent=2))
            shutil.rmtree(stage, ignore_errors=True)
            os.replace(tmp, stage)
        self.state.wait_for_everyone()
        return ds, info

    def _round_prompts(self, r: int, m: int, levels: list) -> tuple[list[str], list[str]]:
        n = self.si.examples_per_round
        per_level = [n // len(levels) + (1 if i < n % len(levels) else 0) for i in range(len(levels))]
        prompts, difficulties = [], []
        for level, count in zip(levels, per_level):
            cols = self.task.generate(
                count,
                seed=self.task_args.data_seed_base,
                purpose="round",
                keys=(r, m),
                difficulty=level,
                split="train",
            )
            prompts += cols["prompt"]
            difficulties += cols["difficulty"]
        return prompts, difficulties

    def _label(self, model, prompts: list[str]):
        """Greedy labels; under several processes each labels a shard and the shards are gathered."""
        if self.state.num_processes == 1:
            return label(
                model,
                self.tokenizer,
                self.task,
                prompts,
                batch_size=self.si.label_batch_size,
                progress=self.state.is_main_process,
            )
        with self.state.split_between_processes(list(enumerate(prompts))) as shard:
            preds = label(
                model,
                self.tokenizer,
                self.task,
                [p for _, p in shard],
                batch_size=self.si.label_batch_size,
                progress=self.state.is_main_process,
            )
            mine = list(zip([i for i, _ in shard], preds))
        gathered = dict(gather_object(mine))
        return [gathered[i] for i in range(len(prompts))]

    # ---- models ----
    def _model(self, r: int, m: int):
        """Member m's model after round r: in memory when this process made it, else from the store."""
        member = self.members[m]
        if member.model is not None and member.round == r:
            return member.model
        if r == self.source_round:
            path = self.sources[m].model_path
        else:
            path = self.store.model_path(r, m)
        kwargs = (
            {"attn_implementation": self.model_args.attn_implementation}
            if self.model_args.attn_implementation
            else {}
        )
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, **kwargs)
        # The same device and dtype as a model that stayed in memory, so labels do not depend on resuming.
        model.to(self.train_args.device)
        member.model, member.round = model, r
        return model

    def _round_dataset(self, r: int, m: int) -> Dataset:
        member = self.members[m]
        if r not in member.rounds:
            if r <= self.source_round:
                member.rounds[r] = self.sources[m].datasets[r]
            else:
                member.rounds[r] = self.store.load_dataset(r, m)
        return member.rounds[r]

    # ---- training ----
    def _round_training_args(self, r: int, m: int) -> SITrainingArguments:
        args = self.train_args
        work = str(self.output_dir / "work" / f"round-{r:03d}" / f"member-{m}" / "trainer")
        overrides = {
            "seed": self._seed(r, m),
            "output_dir": work,
            "push_to_hub": False,
            "save_strategy": "no",
            # Under several processes each one streams the (cheap, seeded) data itself and keeps its
            # slice of every global batch: dispatching from rank 0 would need equal padded lengths.
            "accelerator_config": {**dataclasses.asdict(args.accelerator_config), "dispatch_batches": False},
        }
        if r > 0:
            kwargs = dict(args.lr_scheduler_kwargs or {})
            kwargs["num_decay_steps"] = self.si.round_decay_steps
            overrides.update(
                max_steps=self.si.round_max_steps,
                warmup_steps=self.si.round_warmup_steps,
                learning_rate=self.si.round_learning_rate or args.learning_rate,
                lr_scheduler_kwargs=kwargs,
            )
        overrides.update(self._precision)
        return dataclasses.replace(args, **overrides)

    def _configure_precision(self) -> None:
        mode = self.si.precision
        if mode == "auto":
            mode = "bf16" if torch.cuda.is_available() else "fp32"
        self._precision = {"bf16": mode == "bf16", "fp16": False}
        if mode == "bf16" and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    def d0_stream(self, r: int, m: int):
        """Member m's D_0 as round r reads it. Every round's Trainer starts a fresh epoch, so the shard
        order is seeded per round: otherwise each round would reread the same first shards."""
        d0 = d0_dataset(
            self.task,
            self.d0,
            num_examples=self.task_args.num_d0_examples,
            seed=self.task_args.data_seed_base,
            member=m,
        )
        return d0.shuffle(seed=self._seed(r, m), buffer_size=1)

    def _train_eval_publish(
        self, r: int, m: int, model, trained: list[str], labels: Dataset | None, label_info: dict
    ) -> None:
        d0 = self.d0_stream(r, m)
        rounds = []
        for k in range(1, r + 1):
            ds = labels if k == r else self._round_dataset(k, m)
            if len(ds) < self.si.min_kept:
                logger.warning(
                    "round %d of member %d kept %d labels (< min_round_examples=%d): left out of the mix",
                    k,
                    m,
                    len(ds),
                    self.si.min_kept,
                )
                continue
            rounds.append(ds)
        train_ds = mix_rounds(
            d0,
            rounds,
            newest_probability=self.si.newest_round_probability,
            d0_weight=len(self.task.d0_difficulties(self.d0)),
            seed=self._seed(r, m),
        )
        args = self._round_training_args(r, m)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            data_collator=self.collator,
            processing_class=self.tokenizer,
        )
        t0 = time.perf_counter()
        out = trainer.train()
        train_seconds = time.perf_counter() - t0
        # Without accelerate's autocast wrapper: labelling and evaluation run in the weights' own dtype,
        # exactly as for a model reloaded from the store.
        model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
        # LoRA: label, evaluate and publish the merged model in the base's dtype, exactly what a
        # resumed run reloads from the store.
        model = merge_lora(model)
        self.members[m].model, self.members[m].round = model, r
        if labels is not None:
            self.members[m].rounds[r] = labels

        levels = eval_levels(self.task, trained, self.si.eval_beyond)
        eval_sets = self._eval_sets_for(levels)
        result = evaluate_model(
            model,
            self.tokenizer,
            self.task,
            eval_sets,
            batch_size=self.si.eval_batch_size,
            progress=self.state.is_main_process,
        )
        metrics = result.to_dict()
        metrics.update(
            round=r,
            member=m,
            train_loss=out.training_loss,
            train_seconds=train_seconds,
            train_steps=args.max_steps,
            **{k: v for k, v in label_info.items() if k not in ("levels", "settings")},
        )
        info = {
            "task": self.task.name,
            "round": r,
            "member": m,
            "filter": "+".join(self.si.filters) if r > 0 else "supervised",
            "levels": label_info.get(
                "levels", [self.task.difficulty_key(d) for d in self.task.d0_difficulties(self.d0)]
            ),
            "trained": trained,
            "n_generated": label_info.get("n_generated"),
            "n_kept": label_info.get("n_kept"),
            "data_accuracy": label_info.get("data_accuracy"),
            "generated_by": label_info.get("generated_by"),
            "config": self._config_snapshot(),
            # lets resolve_resume find the rounds this run did not make itself
            "resumed_from": (
                {"spec": self.sources[m].source, "member": m if self.si.num_members > 1 else None}
                if self.sources
                else None
            ),
        }
        if self.state.is_main_process:
            self.store.publish_round(
                r, m, dataset=labels, model=model, tokenizer=self.tokenizer, metrics=metrics, info=info
            )
            work = self.output_dir / "work" / f"round-{r:03d}"
            shutil.rmtree(work / f"member-{m}", ignore_errors=True)
            if work.is_dir() and not any(work.iterdir()):
                work.rmdir()
            self._write_metrics_file()
            kept = (
                f"kept {info['n_kept']}/{info['n_generated']} labels, data accuracy {info['data_accuracy']}"
                if r > 0
                else "supervised on D_0"
            )
            print(f"\nround {r} member {m}: {kept}")
            print(self.summary())
        self.state.wait_for_everyone()

    def _eval_sets_for(self, levels: list) -> dict:
        missing = [lv for lv in levels if self.task.difficulty_key(lv) not in self._eval_sets]
        if missing:
            self._eval_sets.update(
                build_eval_sets(
                    self.task,
                    missing,
                    num_per_difficulty=self.si.eval_examples_per_difficulty,
                    seed=self.task_args.data_seed_base,
                )
            )
        keys = {self.task.difficulty_key(lv) for lv in levels}
        return {k: v for k, v in self._eval_sets.items() if k in keys}

    def _mean_accuracy(self, r: int) -> dict[str, float]:
        per_member = [self._metrics(r, m).get("accuracy", {}) for m in range(self.si.num_members)]
        keys = set().union(*per_member)
        return {k: sum(a.get(k, 0.0) for a in per_member) / len(per_member) for k in keys}

    def _config_snapshot(self) -> dict:
        def clean(obj):
            return {k: v for k, v in dataclasses.asdict(obj).items() if "token" not in k}

        return {
            "task": clean(self.task_args),
            "self_improve": clean(self.si),
            "model": clean(self.model_args),
            "training": {k: v for k, v in self.train_args.to_dict().items() if "token" not in k},
        }

    # ---- reporting ----
    def all_metrics(self) -> list[dict]:
        rows = []
        for m in range(self.si.num_members):
            for r in self.store.completed_rounds(member=m):
                rows.append(self.store.metrics(r, m))
        return rows

    def _write_metrics_file(self) -> None:
        """`metrics.json`: every completed round, rebuilt from the store (the store is the truth)."""
        path = self.output_dir / "metrics.json"
        path.write_text(json.dumps(self.all_metrics(), indent=2))

    def summary(self) -> str:
        return format_table(self.all_metrics())


def run(task_args, si, model_args, train_args) -> SelfImprovementRun:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = SelfImprovementRun(task_args, si, model_args, train_args)
    runner.run()
    return runner


def parse_args(argv=None):
    from trl import TrlParser

    parser = TrlParser((TaskArguments, SelfImproveArguments, ModelArguments, SITrainingArguments))
    return parser.parse_args_and_config(argv)


def main(argv=None) -> SelfImprovementRun:
    return run(*parse_args(argv))
