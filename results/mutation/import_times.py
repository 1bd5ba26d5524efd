"""Seconds to import the fork server's preload list (benchmarks/mutation_preload.txt), and then
mathrl.evaluate, in a fresh interpreter on one thread: what each mutant's run would pay without
the preload. Writes import_times.txt beside this file. Run from the repository root."""
import importlib
import time
from pathlib import Path

here = Path(__file__).parent
names = [line.strip() for line in Path("benchmarks/mutation_preload.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]
start = time.perf_counter()
for name in names:
    importlib.import_module(name)
preload = time.perf_counter() - start
start = time.perf_counter()
import mathrl.evaluate  # noqa: E402,F401
after = time.perf_counter() - start
text = f"preload list ({len(names)} modules): {preload:.2f} s\nmathrl.evaluate after it: {after:.2f} s\n"
(here / "import_times.txt").write_text(text)
print(text, end="")
