"""One GRPO step of SmolLM2-135M, phase by phase, against this machine's matmul roofline.

    python benchmarks/bench_step.py                          # 2 prompts x 8 samples x 32 tokens, beta 0.04, mu 1
    python benchmarks/bench_step.py --threads 1 --repeats 5 --output results/bench/step.json

The same as `mathrl bench` (same options; the library is mathrl/bench.py), kept as the
script `make bench` runs. results/bench/README.md records what it measured.
"""

import sys

from mathrl.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="bench_step.py")
