"""The `si-hf` command: `si-hf run --config recipes/<task>/config_<variant>.yaml [--key value ...]`.

`si-hf run` is `recipes/run_round.py` (the documented entry of the recipes), also under
`accelerate launch --config_file ... -m si_hf.cli run ...`; `si-hf compare A B` checks that two runs
published the same rounds (labels, weights, metrics; timings aside); `si-hf report OUTPUT_DIR
[--output_dir DIR]` writes a markdown report with PNG figures of a run (`si_hf.publishing.report`); `si-hf
summary RUN_DIR ...` puts several runs side by side (`si_hf.summary`); `si-hf analyze errors MODEL` says
how an arithmetic model's wrong answers are wrong (`si_hf.anatomy`); `si-hf analyze carries MODEL`
scores an addition model by its longest carry chain (`si_hf.carries`).
"""

from __future__ import annotations

import sys

COMMANDS = {
    "run": "run self-improvement rounds from a YAML recipe (same flags as recipes/run_round.py)",
    "compare": "compare two output directories round by round (exit 1 on any difference)",
    "report": "write a markdown report with PNG figures of a run (OUTPUT_DIR [--output_dir DIR])",
    "summary": "several runs side by side: seeds of a recipe, or a filter and its contrast (RUN_DIR ...)",
    "analyze": "analyze errors MODEL: dropped and wrong digits of an arithmetic model's answers, per length; "
    "analyze carries MODEL: exact match by the longest carry chain (B.8)",
}
ANALYSES = ("errors", "carries")


def _usage() -> str:
    lines = ["usage: si-hf COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:9s} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines + ["", "`si-hf COMMAND --help` lists a command's arguments."])


def run(argv: list[str]) -> int:
    """`si-hf run`: the round loop; bad input exits 2 and a failure during the work exits 1, each with
    one line that names what went wrong (no traceback for what the user can fix)."""
    from si_hf.rounds import main as run_main
    from si_hf.store import DamagedRoundError, HubError, StoreLockedError
    from si_hf.training import DivergedError

    try:
        run_main(argv)
    except (ValueError, DamagedRoundError, StoreLockedError, PermissionError) as e:
        print(f"si-hf run: error: {e}", file=sys.stderr)
        return 2
    except (DivergedError, HubError) as e:
        print(f"si-hf run: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        return run(rest)
    if command == "compare":
        from si_hf.compare import main as compare_main

        return compare_main(rest)
    if command == "report":
        from si_hf.publishing.report import main as report_main

        return report_main(rest)
    if command == "summary":
        from si_hf.summary import main as summary_main

        return summary_main(rest)
    if command == "analyze":
        if not rest or rest[0] not in ANALYSES:
            got = repr(rest[0]) if rest else "nothing"
            print(f"si-hf analyze: got {got}; expected one of {list(ANALYSES)}, e.g. si-hf analyze errors MODEL",
                  file=sys.stderr)  # fmt: skip
            return 2
        if rest[0] == "carries":
            from si_hf.carries import main as carries_main

            return carries_main(rest[1:])
        from si_hf.anatomy import main as errors_main

        return errors_main(rest[1:])
    print(
        f"si-hf: unknown command {command!r}; expected one of {list(COMMANDS)}\n\n{_usage()}", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
