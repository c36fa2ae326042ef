"""Restart or continue (`round_init`) and the majority-vote variants of appendix B.2.4 (`vote_variant`):
what each member starts from and trains on, on tiny models through the real round loop."""

import json

import pytest
import torch
from safetensors.torch import load_file
from test_rounds import TINY, round_dataset, run_dir, write_config

from si_hf.rounds import main
from si_hf.tasks import get_task


def weights(out, r, m=0):
    return load_file(str(out / f"rounds/round-{r:03d}/member-{m}/model/model.safetensors"))


def same(a, b, atol=0.0):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=atol) for k in a)


def metrics(out, r, m=0):
    return json.loads((out / f"rounds/round-{r:03d}/member-{m}/metrics.json").read_text())


def test_round_init_sets_what_a_round_starts_from(tmp_path):
    """Rounds 0 and 1 once (round 1 starts from round 0 either way), then round 2 under each setting
    with a learning rate too small to move a weight: its model is where it started, round 1's under
    `continue`, round 0's under `base`; it trained on the same mix of D_0 and rounds 1-2."""
    import shutil

    cfg = write_config(tmp_path, task="copy", d0="3", filters=["length"], num_rounds=2)
    main(["--config", str(cfg), "--rounds", "0:1"])
    out = run_dir(cfg)
    w = [weights(out, r) for r in range(2)]
    assert not same(w[0], w[1], atol=1e-4)  # round 1 moved the weights
    for init, start, other in (("continue", w[1], w[0]), ("base", w[0], w[1])):
        shutil.copytree(out, tmp_path / init)
        main(["--config", str(cfg), "--round", "2", "--round_learning_rate", "1e-30", "--round_init", init,
              "--output_dir", str(tmp_path / init), "--allow_config_change", "true"])  # fmt: skip
        w2 = weights(tmp_path / init, 2)
        assert same(w2, start, atol=1e-6) and not same(w2, other, atol=1e-4)
        assert metrics(tmp_path / init, 2)["train_steps"] == TINY["round_max_steps"]
        info = json.loads((tmp_path / init / "rounds/round-002/member-0/si_hf_round.json").read_text())[
            "info"
        ]
        assert info["config"]["self_improve"]["round_init"] == init


def test_lora_base_restarts_from_the_pretrained_model(tmp_path):
    """LoRA under `base`: round 1 is one rank-r adaptation of the pretrained base (round 1 minus the base
    has rank <= r, and is not round 0's adaptation); continuing would add round 0's and round 1's up."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(tmp_path / "pretrained")
    base = load_file(str(tmp_path / "pretrained" / "model.safetensors"))
    cfg = write_config(tmp_path, task="copy", d0="3", model_name_or_path=str(tmp_path / "pretrained"),
                       use_peft=True, lora_r=2, lora_alpha=4, tokenizer_name="char", num_rounds=1,
                       round_init="base", learning_rate=5e-2, round_learning_rate=5e-2)  # fmt: skip
    main(["--config", str(cfg)])
    key = "model.layers.0.self_attn.q_proj.weight"
    d0, d1 = (weights(run_dir(cfg), r)[key] - base[key] for r in (0, 1))
    assert torch.linalg.matrix_rank(d0, rtol=1e-4).item() == 2
    assert torch.linalg.matrix_rank(d1, rtol=1e-4).item() == 2
    # continuing would give d0 + (a rank-2 update): rank 4, and round 1 would still contain d0
    assert torch.linalg.matrix_rank(torch.cat([d0, d1]), rtol=1e-4).item() > 2


def test_shared_data_trains_every_member_on_one_voted_dataset(tmp_path):
    cfg = write_config(tmp_path, task="copy", d0="3", num_rounds=1, num_members=2, filters=["majority_vote"],
                       vote_threshold=1.0, vote_variant="shared_data")  # fmt: skip
    main(["--config", str(cfg)])
    out, task = run_dir(cfg), get_task("copy")
    d0, d1 = round_dataset(out, 1, 0), round_dataset(out, 1, 1)
    assert d0.to_dict() == d1.to_dict()
    # member 0's prompts (its seed stream), not member 1's
    drawn = set(
        task.generate(TINY["examples_per_round"], seed=1234, purpose="round", keys=(1, 0), difficulty=4)[
            "prompt"
        ]
    )
    assert set(d1["prompt"]) <= drawn
    assert (
        metrics(out, 1, 0)["n_generated"] == metrics(out, 1, 1)["n_generated"] == TINY["examples_per_round"]
    )
    assert not same(weights(out, 0, 0), weights(out, 0, 1))  # members still start from their own seeds


def test_shared_seed_starts_every_member_from_member_0s_round_0(tmp_path):
    cfg = write_config(tmp_path, task="copy", d0="3", num_rounds=1, num_members=2, filters=["majority_vote"],
                       vote_threshold=1.0, vote_variant="shared_seed")  # fmt: skip
    main(["--config", str(cfg)])
    out = run_dir(cfg)
    assert same(weights(out, 0, 0), weights(out, 0, 1))
    m1 = metrics(out, 0, 1)
    assert m1["copied_from_member"] == 0 and m1["train_seconds"] == 0.0
    assert m1["accuracy"] == metrics(out, 0, 0)["accuracy"]
    # then each member its own prompts and labels
    assert set(round_dataset(out, 1, 0)["prompt"]) != set(round_dataset(out, 1, 1)["prompt"])
    assert not same(weights(out, 1, 0), weights(out, 1, 1))


def test_more_data_is_one_model_with_k_times_the_prompts(tmp_path):
    cfg = write_config(tmp_path, task="copy", d0="3", num_rounds=1, num_members=3,
                       filters=["majority_vote", "length"], vote_threshold=1.0, vote_variant="more_data")  # fmt: skip
    main(["--config", str(cfg)])
    out = run_dir(cfg)
    assert sorted(p.name for p in (out / "rounds/round-001").iterdir()) == ["member-0"]
    assert metrics(out, 1)["n_generated"] == 3 * TINY["examples_per_round"]
    si = json.loads((out / "rounds/round-001/member-0/si_hf_round.json").read_text())["info"]["config"]
    si = si["self_improve"]
    assert (si["num_members"], si["filters"], si["vote_variant"]) == (1, ["length"], "more_data")
    # the same invocation resumes the store it made (the settings it records are the ones it runs)
    main(["--config", str(cfg)])


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"vote_variant": "shared_data"}, "vote_variant: 'shared_data' is an ablation of the majority vote"),
        ({"vote_variant": "bagging"}, "vote_variant: 'bagging' is not one of"),
        ({"round_init": "restart"}, "round_init: 'restart' is not one of \\['continue', 'base'\\]"),
    ],
)
def test_bad_variants_are_refused_before_any_work(tmp_path, overrides, match):
    cfg = write_config(tmp_path, task="copy", d0="3", **overrides)
    with pytest.raises(ValueError, match=match):
        main(["--config", str(cfg)])
    assert not run_dir(cfg).exists()
