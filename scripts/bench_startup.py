"""How fast hfgen starts: `import hfgen`, `hfgen --help` and `hfgen train <family> --help`, against references
measured in the same run (`import torch`, and importing exactly what the family needs).

    python scripts/bench_startup.py [--repeats 5]

Each figure is the median wall time of fresh interpreters; `python -X importtime` confirms what was imported.
Goals (issue #9): `import hfgen` <= 0.5 s, `hfgen --help` <= 0.5 s, `hfgen train gan --help` no slower than
importing the GAN family itself.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def seconds(code: str, repeats: int) -> float:
    """Median wall time of `python -c code` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def heavy_modules(code: str) -> list[str]:
    """Which of torch / diffusers / transformers `code` imports, read from `-X importtime`."""
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True, capture_output=True, text=True).stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()}
    return [name for name in ("torch", "diffusers", "transformers") if name in imported]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--family", default="gan")
    options = parser.parse_args()
    cases = {
        "python (empty)": "pass",
        "import torch (reference)": "import torch",
        "import hfgen": "import hfgen",
        "hfgen --help": "from hfgen.cli import main; main(['--help'])",
        f"import the {options.family} family (reference)": f"from hfgen.families import get_family; get_family({options.family!r})",
        f"hfgen train {options.family} --help": (
            "import contextlib, io\nfrom hfgen.cli import main\n"
            f"with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()): main(['train', {options.family!r}, '--help'])"
        ),
    }
    results = {name: seconds(code, options.repeats) for name, code in cases.items()}
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:{width}s}  {value:6.3f} s  imports {heavy_modules(cases[name]) or 'none of torch/diffusers/transformers'}")
    torch = results["import torch (reference)"]
    family = results[f"import the {options.family} family (reference)"]
    print(f"import hfgen / import torch: {results['import hfgen'] / torch:.2f}")
    print(f"hfgen --help / import torch: {results['hfgen --help'] / torch:.2f}")
    print(f"hfgen train {options.family} --help / importing the family: {results[f'hfgen train {options.family} --help'] / family:.2f}")


if __name__ == "__main__":
    main()
