import filecmp
import random
import runpy
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from si_hf.tokenization import (
    check_text,
    check_texts,
    encode_completion,
    encode_completions,
    encode_prompt,
    encode_prompts,
    get_tokenizer,
    save_tokenizers,
)

REPO = Path(__file__).resolve().parents[1]
NAMES = ("char", "maze")


@pytest.fixture(scope="module")
def tokenizers():
    return {name: get_tokenizer(name) for name in NAMES}


# Independent re-implementations of the formats of the paper's appendix C.2, so the tokenizers are
# exercised on realistic strings without depending on si_hf.tasks.
def _operand(rng, n):
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def reverse_addition(rng, n):
    a, b = _operand(rng, n), _operand(rng, rng.randint(1, n))
    width = max(len(a), len(b)) + 1
    return f"{a[::-1]}+{b[::-1]}=", str(int(a) + int(b))[::-1].ljust(width, "0")


def forward_addition(rng, n):
    a, b = _operand(rng, n), _operand(rng, n)
    return f"{a}+{b}=", str(int(a) + int(b))


def copy_task(rng, n):
    s = _operand(rng, n)
    return f"{s}=", s


def reverse_string(rng, n):
    s = _operand(rng, n)
    return f"{s}=", s[::-1]


def cot_multiplication(rng, n, m=None):
    a, b = _operand(rng, n), _operand(rng, m or n)
    return multiplication_example(a, b)


def multiplication_example(a, b):
    steps, total = [], 0
    for i, digit in enumerate(reversed(b)):
        partial = int(digit) * int(a) * 10**i
        total += partial
        width = i + len(a) + 1
        step = str(partial)[::-1].ljust(width, "0")
        if 0 < i < len(b) - 1:
            step += f"({str(total)[::-1].ljust(width, '0')})"
        steps.append(step)
    final = str(int(a) * int(b))[::-1].ljust(len(a) + len(b), "0")
    return f"{a[::-1]}*{b[::-1]}=", "+".join(steps) + "=" + final


def maze(rng, nodes):
    labels = rng.sample(range(1, 100), nodes)
    parent = {labels[i]: labels[rng.randrange(i)] for i in range(1, nodes)}
    adjacency = {v: [] for v in labels}
    for child, par in parent.items():
        adjacency[child].append(par)
        adjacency[par].append(child)
    start, end = labels[-1], labels[0]
    path = [start]
    while path[-1] != end:
        path.append(parent[path[-1]])
    rng.shuffle(labels)
    listing = "-".join(
        f"{v}:{','.join(map(str, rng.sample(adjacency[v], len(adjacency[v]))))}" for v in labels
    )
    return f"{start}>{end}#{listing}=", ">".join(map(str, path))


CHAR_FORMATS = [reverse_addition, forward_addition, copy_task, reverse_string, cot_multiplication]
DESIGN_EXAMPLES = {
    "char": [
        ("54321+876=", "320310"),
        ("12345+678=", "13023"),
        ("4821937=", "4821937"),
        ("4821937=", "7391284"),
        ("4321*765=", "83680+040470(876280)+0007160=8769960"),
    ],
    "maze": [("61>27#49:27,13,84-27:49-13:49-84:61,49-61:84=", "61>84>49>27")],
}


def examples(name, count=40, seed=0):
    rng = random.Random(seed)
    out = list(DESIGN_EXAMPLES[name])
    for i in range(count):
        if name == "char":
            out.append(CHAR_FORMATS[i % len(CHAR_FORMATS)](rng, rng.randint(1, 12)))
        else:
            out.append(maze(rng, rng.randint(2, 40)))
    return out


def test_multiplication_helper_matches_design_example():
    assert multiplication_example("1234", "567") == DESIGN_EXAMPLES["char"][4]


@pytest.mark.parametrize("name", NAMES)
def test_special_tokens_fixed_and_distinct(tokenizers, name):
    tok = tokenizers[name]
    ids = (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)
    assert ids == (0, 1, 2)
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ("<pad>", "<bos>", "<eos>")
    assert tok.padding_side == "right"
    assert tok.model_max_length >= 100_000


@pytest.mark.parametrize(
    "name, tokens",
    [
        ("char", list("0123456789+*=()>#:,-abcdefghijklmnopqrstuvwxyz")),
        ("maze", [str(i) for i in range(1, 100)] + list(">#:,-=")),
    ],
)
def test_vocabulary_is_exactly_the_spec(tokenizers, name, tokens):
    tok = tokenizers[name]
    vocab = tok.get_vocab()
    assert set(vocab) == {"<pad>", "<bos>", "<eos>", *tokens}
    assert sorted(vocab.values()) == list(range(len(vocab)))
    for token in tokens:
        assert tok(token, add_special_tokens=False)["input_ids"] == [vocab[token]]


def test_maze_splits_numbers_as_single_tokens(tokenizers):
    tok = tokenizers["maze"]
    ids = tok("61>27#49:27,13", add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["61", ">", "27", "#", "49", ":", "27", ",", "13"]


@pytest.mark.parametrize("name", NAMES)
def test_bos_added_eos_never(tokenizers, name):
    tok = tokenizers[name]
    for prompt, answer in examples(name, count=10):
        bare = tok(prompt + answer, add_special_tokens=False)["input_ids"]
        full = tok(prompt + answer)["input_ids"]
        assert full == [tok.bos_token_id, *bare]
        assert tok.eos_token_id not in full and tok.pad_token_id not in full


@pytest.mark.parametrize("name", NAMES)
def test_prefix_stable_and_helpers_frame(tokenizers, name):
    tok = tokenizers[name]
    for prompt, answer in examples(name):
        prompt_ids = tok(prompt)["input_ids"]
        full_ids = tok(prompt + answer)["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids, (prompt, answer)
        framed = encode_prompt(tok, prompt) + encode_completion(tok, answer)
        assert framed == full_ids + [tok.eos_token_id]


@pytest.mark.parametrize("name", NAMES)
def test_decode_round_trip_without_spaces(tokenizers, name):
    tok = tokenizers[name]
    for prompt, answer in examples(name):
        ids = encode_prompt(tok, prompt) + encode_completion(tok, answer)
        assert tok.decode(ids, skip_special_tokens=True) == prompt + answer
        assert tok.decode(encode_completion(tok, answer), skip_special_tokens=True) == answer
    assert tok.decode([1, *tok("1>2", add_special_tokens=False)["input_ids"], 2, 0]) == "<bos>1>2<eos><pad>"


TASK_D0 = {
    "reverse_addition": 6,
    "forward_addition": 6,
    "copy": 8,
    "reverse_string": 8,
    "multiplication": 4,
    "maze_hops": 6,
    "maze_nodes": 14,
}


@pytest.mark.parametrize("task_name", TASK_D0)
def test_real_task_strings_prefix_stable_and_round_trip(tokenizers, task_name):
    tasks = pytest.importorskip("si_hf.tasks")
    if not hasattr(tasks, "get_task"):
        pytest.skip("si_hf.tasks.get_task not available yet")
    task = tasks.get_task(task_name)
    tok = tokenizers[task.tokenizer_name]
    data = task.generate(30, seed=0, purpose="d0", d0=TASK_D0[task_name])
    for prompt, answer in zip(data["prompt"], data["answer"]):
        prompt_ids = tok(prompt)["input_ids"]
        assert tok(prompt + answer)["input_ids"][: len(prompt_ids)] == prompt_ids, (prompt, answer)
        ids = encode_prompt(tok, prompt) + encode_completion(tok, answer)
        assert tok.decode(ids, skip_special_tokens=True) == prompt + answer


@pytest.mark.parametrize(
    "name, text, piece, position",
    [
        ("char", "12+3?=", "'?'", 4),
        ("char", "12 3=", "' '", 2),
        ("char", "1A", "'A'", 1),
        ("char", "1<eos>", "'<'", 1),
        ("maze", "61>27#0:27=", "'0'", 6),
        ("maze", "61>100#", "'100'", 3),
        ("maze", "61>27#05:1=", "'05'", 6),
        ("maze", "1>2#a", "'a'", 4),
    ],
)
def test_out_of_vocabulary_names_piece_and_position(tokenizers, name, text, piece, position):
    tok = tokenizers[name]
    for call in (check_text, encode_prompt, encode_completion):
        with pytest.raises(ValueError, match=f"{piece} at position {position} ") as info:
            call(tok, text)
        assert name in str(info.value)


@pytest.mark.parametrize("name, text", [("char", "12?"), ("maze", "61>100")])
def test_raw_tokenizer_fails_loudly_instead_of_unk(tokenizers, name, text):
    # WordLevel without an unk token errors inside the Rust backend (a bare Exception); check_text is
    # what gives the readable ValueError.
    with pytest.raises(Exception, match="Missing \\[UNK\\]"):
        tokenizers[name](text)


def test_raw_tokenizer_maps_literal_special_text_so_check_text_guards_it(tokenizers):
    tok = tokenizers["char"]
    assert tok("1<eos>", add_special_tokens=False)["input_ids"] == [
        tok("1")["input_ids"][1],
        tok.eos_token_id,
    ]
    with pytest.raises(ValueError, match="'<'"):
        check_text(tok, "1<eos>")


@pytest.mark.parametrize("name", NAMES)
def test_batch_helpers_match_single_helpers(tokenizers, name):
    tok = tokenizers[name]
    prompts, answers = zip(*examples(name, count=10))
    assert encode_prompts(tok, list(prompts)) == [encode_prompt(tok, p) for p in prompts]
    assert encode_completions(tok, list(answers)) == [encode_completion(tok, a) for a in answers]
    assert encode_prompts(tok, []) == []
    assert encode_prompt(tok, "") == [tok.bos_token_id] and encode_completion(tok, "") == [tok.eos_token_id]
    with pytest.raises(ValueError, match="'!' at position 2 of '1>!'"):
        check_texts(tok, [prompts[0], "1>!"])
    with pytest.raises(ValueError, match="expected a list of str"):
        encode_prompts(tok, prompts[0])


def test_check_text_rejects_non_strings(tokenizers):
    with pytest.raises(ValueError, match="expected a str"):
        check_text(tokenizers["char"], 123)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="'wordpiece'.*'char'.*'maze'"):
        get_tokenizer("wordpiece")


def test_padding_side_settable():
    tok = get_tokenizer("char", padding_side="left")
    batch = tok(["1=", "123="], padding=True)["input_ids"]
    assert batch[0][:2] == [tok.pad_token_id, tok.pad_token_id]
    with pytest.raises(ValueError, match="'middle'"):
        get_tokenizer("char", padding_side="middle")


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def test_build_is_bit_for_bit_and_matches_committed_folder(tmp_path, monkeypatch):
    committed = REPO / "tokenizer"
    save_tokenizers(tmp_path / "first")
    save_tokenizers(tmp_path / "first")  # rebuilding over an existing folder must also be identical
    # In-process run of the script `make tokenizer` calls (a subprocess would re-import torch: ~10 s).
    monkeypatch.setattr(sys, "argv", ["build_tokenizers.py", "--output_dir", str(tmp_path / "script")])
    runpy.run_path(str(REPO / "scripts" / "build_tokenizers.py"), run_name="__main__")
    for name in NAMES:
        assert _same_tree(tmp_path / "first" / name, committed / name), name
        assert _same_tree(tmp_path / "script" / name, committed / name), name


@pytest.mark.parametrize("name", NAMES)
def test_committed_folder_loads_with_auto_tokenizer(tokenizers, name):
    loaded = AutoTokenizer.from_pretrained(str(REPO / "tokenizer" / name))
    built = tokenizers[name]
    assert loaded.get_vocab() == built.get_vocab()
    assert (loaded.pad_token_id, loaded.bos_token_id, loaded.eos_token_id) == (0, 1, 2)
    for prompt, answer in examples(name, count=5):
        assert loaded(prompt + answer)["input_ids"] == built(prompt + answer)["input_ids"]
        ids = encode_prompt(loaded, prompt) + encode_completion(loaded, answer)
        assert loaded.decode(ids, skip_special_tokens=True) == prompt + answer
    assert (
        AutoTokenizer.from_pretrained(str(REPO / "tokenizer" / name), padding_side="left").padding_side
        == "left"
    )
