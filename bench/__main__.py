"""``python -m bench``: run every script in ``bench/`` in turn, each in its own process."""

import subprocess
import sys
from pathlib import Path

# Helpers the benchmarks start themselves: the load generator and a served route.
NOT_BENCHMARKS = {"__init__.py", "__main__.py", "load.py", "http_floor.py"}

failed = []
for script in sorted(Path(__file__).parent.glob("*.py")):
    if script.name in NOT_BENCHMARKS:
        continue
    print(f"== {script.name}", flush=True)
    if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
        failed.append(script.name)
if failed:
    sys.exit(f"benchmarks failed: {', '.join(failed)}")
