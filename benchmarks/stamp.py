r"""Run a command and print each line of its output (stdout and stderr, split at \r and \n, so
progress bars show every update) after the seconds since the start. How issue 14's headline
was timed to its first training step (results/bench/speed3.md):

    python benchmarks/stamp.py mathrl run --algo grpo --task gsm8k --data ../shared/data/gsm8k --max-steps 1
"""

from __future__ import annotations

import re
import subprocess
import sys
import time


def main(command: list[str]) -> int:
    if not command:
        print(__doc__, file=sys.stderr)
        return 2
    start = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pending = b""
    while chunk := child.stdout.read1(4096):
        *lines, pending = re.split(rb"[\r\n]", pending + chunk)
        for line in lines:
            if line.strip():
                print(f"{time.time() - start:8.1f}  {line.decode(errors='replace')}", flush=True)
    code = child.wait()
    print(f"{time.time() - start:8.1f}  exit {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
