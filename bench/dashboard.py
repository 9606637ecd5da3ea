"""Benchmark the dashboard: server time per page on a demo shop, read from each answer's Server-Timing.

Starts ``touchpoint serve`` on a demo data directory (``touchpoint demo --no-serve --data DIR`` makes one;
without ``--data`` a 1,500-customer, 60-week shop is simulated and analysed first, which takes minutes),
signs in with the demo's admin key, waits until the background refresh has computed every page, then
loads each page N times. The table shows the median and the slowest server time (the ``app;dur`` of the
``Server-Timing`` header: from the request reaching the route to the rendered page) and the median time
seen by the client on loopback. The target (issue 16) is under 300 ms server time for every page.

    python3 -m uv run --locked --no-sync python bench/dashboard.py --data /tmp/demo --runs 20
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PAGES = [
    "/",
    "/customers",
    "/customers?q={email}",
    "/customers/{profile}",
    "/experiments",
    "/experiments?baseline=0.1&mde=0.05",
    "/experiments?baseline=0.1&units=5000&event=Order+Completed&share=0.5",
    "/journeys",
    "/mmm",
    "/audiences",
    "/automations",
    "/plan",
    "/data",
    "/datamap",
    "/users",
    "/csv/overview/weekly.csv",
]
TARGET_MS = 300.0


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _demo(data: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "touchpoint.cli.main",
            "demo",
            "--customers",
            "1500",
            "--weeks",
            "60",
            "--no-serve",
            "--data",
            str(data),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a demo data directory (default: simulate one)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "dashboard.json")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="tp-dashboard-bench-")) / "data"
    if not (data / "demo" / "keys.json").exists():
        _demo(data)
    keys = json.loads((data / "demo" / "keys.json").read_text())
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "touchpoint.cli.main", "serve", "--port", str(port), "--data", str(data)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=base, timeout=120)
        deadline = time.monotonic() + 900  # a busy machine can take minutes to import and migrate
        while time.monotonic() < deadline:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text).group(1)  # type: ignore[union-attr]
        client.post("/signin", data={"csrf": token, "username": "", "password": keys["admin_key"]})
        started = time.monotonic()
        computed = ("/", "/experiments", "/journeys", "/mmm", "/audiences", "/automations", "/plan", "/data")
        while any("data-computing" in client.get(p).text for p in computed):
            time.sleep(1)
        warm = time.monotonic() - started
        top = client.get(
            "/v1/predictions", params={"limit": 1}, headers={"Authorization": f"Bearer {keys['admin_key']}"}
        )
        profile = top.json()["rows"][0]["customer_id"]
        shown = client.get(f"/v1/profiles/{profile}", headers={"Authorization": f"Bearer {keys['admin_key']}"}).json()
        email = shown["computed"].get("email") or profile
        time.sleep(5)  # let the timeline index (computed after the pages) finish
        rows = []
        for template in PAGES:
            path = template.format(email=email, profile=profile)
            server_ms, client_ms = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                response = client.get(path)
                client_ms.append((time.perf_counter() - t) * 1000)
                timing = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
                server_ms.append(float(timing.group(1)) if timing else float("nan"))
            rows.append(
                {
                    "page": template,
                    "status": response.status_code,
                    "server_ms_median": statistics.median(server_ms),
                    "server_ms_max": max(server_ms),
                    "client_ms_median": statistics.median(client_ms),
                }
            )
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"{'page':70s} {'status':>6s} {'server p50':>11s} {'server max':>11s} {'client p50':>11s}")
    for r in rows:
        print(
            f"{r['page']:70s} {r['status']:6d} {r['server_ms_median']:9.1f}ms {r['server_ms_max']:9.1f}ms "
            f"{r['client_ms_median']:9.1f}ms"
        )
    print(f"first full refresh after start: {warm:.1f} s; load average {os.getloadavg()[0]:.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "data": str(data),
        "runs": args.runs,
        "warm_up_seconds": warm,
        "load_average": os.getloadavg(),
        "target_ms": TARGET_MS,
        "pages": rows,
    }
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
