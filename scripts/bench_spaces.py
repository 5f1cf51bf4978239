"""Load on a Space: C concurrent gradio clients x N requests each on loopback - errors, p50/p95 latency, throughput.

    python scripts/bench_spaces.py gan --model out/gan-digits [--clients 16] [--requests 4] [--endpoint /sample]
    python scripts/bench_spaces.py gan --url http://127.0.0.1:7860/ ...     # a Space already running

Without --url the Space is served from this process (its own app.py, $HFGEN_MODEL set to --model) behind the same
queue as `hfgen demo` (two requests computed at once), and the script also reports how long it took to start:
`import hfgen`, building the demo (model load included) and serving. Bounded: loopback only, at most 64 clients
x 50 requests, and every request times out after --timeout seconds (counted as an error).
"""

from __future__ import annotations

import argparse
import os
import runpy
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Small default arguments per endpoint (the Space's own defaults, fewer images): (endpoint, arguments).
REQUESTS = {
    "diffusion": ("/sample", (0, 4, "dpmsolver", 20, -1, 3.0)),
    "vae": ("/sample", (0, 16)),
    "gan": ("/sample", (0, 16, -1, 1.0)),
    "autoregressive": ("/sample", (0, 4, 1.0)),
    "zoo": ("/compare", (0, 4)),
}


def serve(space: str, model: str) -> tuple[str, dict[str, float]]:
    """Serve spaces/<space>/app.py from this process on a free port -> (url, start-up seconds by phase)."""
    started = time.perf_counter()
    import hfgen  # noqa: F401  (timed: the package import itself)
    from hfgen.demo import MODEL_ENV, launch

    imported = time.perf_counter()
    os.environ[MODEL_ENV] = model
    demo = runpy.run_path(str(Path(__file__).resolve().parents[1] / "spaces" / space / "app.py"))["demo"]
    built = time.perf_counter()
    launch(demo, prevent_thread_lock=True, quiet=True)
    served = time.perf_counter()
    return demo.local_url, {"import hfgen": imported - started, "build (model load)": built - imported, "serve": served - built}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("space", choices=list(REQUESTS))
    parser.add_argument("--model", help="Model folder or repo id to serve (or a zoo folder for `zoo`).")
    parser.add_argument("--url", help="A Space already running on loopback, instead of serving one here.")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=4, help="Requests per client.")
    parser.add_argument("--timeout", type=float, default=120.0, help="Seconds before a request counts as an error.")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64 or not 1 <= args.requests <= 50:
        parser.error("--clients must be in [1, 64] and --requests in [1, 50].")
    if args.url is None and args.model is None:
        parser.error("pass --model (served here) or --url (a running Space).")
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--url must be on loopback (http://127.0.0.1:PORT/).")

    from gradio_client import Client

    startup = {}
    url = args.url
    if url is None:
        url, startup = serve(args.space, args.model)
    endpoint, arguments = REQUESTS[args.space]
    first = time.perf_counter()
    Client(url, verbose=False).predict(*arguments, api_name=endpoint)
    first_response = time.perf_counter() - first

    def client_run(_: int) -> list[float | None]:
        """One client's latencies, None for a failed request."""
        client, latencies = Client(url, verbose=False), []
        for _ in range(args.requests):
            started = time.perf_counter()
            try:
                client.submit(*arguments, api_name=endpoint).result(timeout=args.timeout)
                latencies.append(time.perf_counter() - started)
            except Exception:
                latencies.append(None)
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        results = [latency for latencies in pool.map(client_run, range(args.clients)) for latency in latencies]
    wall = time.perf_counter() - started
    ok = sorted(latency for latency in results if latency is not None)
    errors = len(results) - len(ok)

    for phase, seconds in startup.items():
        print(f"start-up  {phase:<20} {seconds:6.2f} s")
    print(f"first response ({endpoint})    {first_response:6.2f} s")
    print(f"{args.clients} clients x {args.requests} requests on {args.space} {endpoint}: {len(results)} requests in {wall:.1f} s")
    print(f"errors {errors} (goal 0)")
    if ok:
        p95 = ok[min(len(ok) - 1, round(0.95 * (len(ok) - 1)))]
        print(f"latency p50 {statistics.median(ok):.2f} s, p95 {p95:.2f} s; throughput {len(ok) / wall:.2f} requests/s")


if __name__ == "__main__":
    main()
