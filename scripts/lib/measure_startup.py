"""Start-up time of Lambda function binaries, measured against a stand-in Lambda Runtime API.

For each binary: start it with AWS_LAMBDA_RUNTIME_API pointing at a local probe server and time
how long it takes until it asks for its first event (GET /2018-06-01/runtime/invocation/next):
that is the cold-start work the function does before it can serve (config, clients, telemetry).
The function is stopped as soon as it asks. p50 and p90 (nearest rank) over 20 runs by default.

Usage: python measure_startup.py --runs N --json OUT.json BINARY...
The environment of this script is passed on to the binaries (set SANDMAN_TABLE etc. there).
"""

import argparse
import http.server
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time

NEXT_EVENT_PATH = "/2018-06-01/runtime/invocation/next"
RUN_TIMEOUT_S = 20.0


class Probe(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ProbeHandler)
        self.asked = threading.Event()
        self.asked_at = None
        self.release = threading.Event()

    def arm(self):
        self.asked.clear()
        self.release.clear()
        self.asked_at = None


class ProbeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == NEXT_EVENT_PATH:
            if not self.server.asked.is_set():
                self.server.asked_at = time.perf_counter()
                self.server.asked.set()
            # Hold the long poll open, as Lambda does, until the run is over.
            self.server.release.wait(RUN_TIMEOUT_S)
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


def peak_rss_mib(pid):
    """The process's peak resident memory so far (Linux `VmHWM`), in MiB; None elsewhere."""
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def cpu_ms(pid):
    """CPU time the process has run so far (all threads; Linux schedstat, ns), in ms; None elsewhere.
    Unlike wall time it does not grow when other work on the machine delays the process."""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="utf-8") as stat:
                total += int(stat.read().split()[0])
        return total / 1e6
    except (OSError, ValueError, IndexError):
        return None


def measure_once(probe, binary, env):
    probe.arm()
    started = time.perf_counter()
    process = subprocess.Popen(
        [binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = started + RUN_TIMEOUT_S
        while not probe.asked.wait(0.005):
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace").strip()
                return None, f"exited with {process.returncode} before asking for an event: {stderr[-500:]}"
            if time.perf_counter() > deadline:
                return None, f"did not ask for an event within {RUN_TIMEOUT_S:.0f} s"
        return ((probe.asked_at - started) * 1000.0, peak_rss_mib(process.pid), cpu_ms(process.pid)), None
    finally:
        probe.release.set()
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()

    probe = Probe()
    threading.Thread(target=probe.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{probe.server_address[1]}")

    results, failed = {}, False
    for binary in args.binaries:
        name = os.path.basename(binary)
        run_env = dict(env, AWS_LAMBDA_FUNCTION_NAME=f"sandman-{name}")
        run_env.setdefault("AWS_LAMBDA_LOG_STREAM_NAME", "measure")
        run_env.setdefault("AWS_LAMBDA_LOG_GROUP_NAME", f"/sandman/measure/{name}")
        samples, rss, cpu, error = [], [], [], None
        for _ in range(args.runs):
            measured, error = measure_once(probe, binary, run_env)
            if error:
                break
            samples.append(measured[0])
            if measured[1] is not None:
                rss.append(measured[1])
            if measured[2] is not None:
                cpu.append(measured[2])
        if error:
            failed = True
            results[name] = {"error": error}
            print(f"    {name:<16} FAILED: {error}")
        else:
            median = statistics.median(samples)
            p90 = sorted(samples)[math.ceil(0.9 * len(samples)) - 1]
            peak = max(rss) if rss else None
            results[name] = {"median_ms": round(median, 2), "p90_ms": round(p90, 2), "samples_ms": [round(s, 2) for s in samples],
                             "peak_rss_mib": round(peak, 1) if peak is not None else None,
                             "cpu_p50_ms": round(statistics.median(cpu), 2) if cpu else None}
            memory = f", peak RSS {peak:.1f} MiB" if peak is not None else ""
            memory += f", CPU p50 {statistics.median(cpu):.1f} ms" if cpu else ""
            print(f"    {name:<16} {median:8.1f} ms p50, {p90:8.1f} ms p90 over {len(samples)} cold starts "
                  f"(min {min(samples):.1f}, max {max(samples):.1f}){memory}")
    probe.shutdown()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
