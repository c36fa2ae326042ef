"""Regenerate tokenizer/char and tokenizer/maze bit-for-bit from si_hf.tokenization (`make tokenizer`)."""

import argparse

from si_hf.tokenization import save_tokenizers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output_dir", default="tokenizer", help="folder that receives char/ and maze/")
    args = parser.parse_args()
    for path in save_tokenizers(args.output_dir):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
