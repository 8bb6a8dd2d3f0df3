#!/usr/bin/env python3
"""Runs real Spark applications that fail in each way the classifier knows, and writes what the classifier reads
(exit code, driver-log excerpt, failure events of the event log) to test/fixtures/spark-logs/<scenario>.json.

Every excerpt comes from a real run of the pip pyspark in local-cluster mode (real executor JVMs). Two scenarios
need a hand from outside, as they would in production from the cluster: `container-memory-kill` SIGKILLs the
executor JVM while its tasks run (what the kernel OOM killer or a YARN/Kubernetes memory limit does: exit 137), and
`shuffle-fetch` deletes the executor's shuffle files between two reads of the same shuffle (a lost disk or node).

Usage: .tools/venv/bin/python scripts/spark/capture-log-excerpts.py [scenario ...]
Needs SPARK_HOME (default: the venv's pyspark) and Java 17. Takes a few minutes.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOBS = os.path.join(ROOT, "test", "fixtures", "spark-jobs")
OUT = os.path.join(ROOT, "test", "fixtures", "spark-logs")

# The same selection the submitter makes (lib/spark/submitter.ts EVIDENCE): failure-looking lines, then the tail.
EVIDENCE = re.compile(
    r"OutOfMemory|exited with code|ExecutorLost|FetchFailed|Container killed|exceeding memory|UNABLE_TO_ACQUIRE_MEMORY"
    r"|Unable to acquire|Traceback|Error:|Exception|unresponsive|Lost executor|aborting job|exit code"
)
TAIL = 60
EVENTS_KEPT = {"SparkListenerApplicationStart", "SparkListenerExecutorRemoved", "SparkListenerJobEnd",
               "SparkListenerStageExecutorMetrics", "SparkListenerExecutorAdded"}

LOCAL_CLUSTER = "local-cluster[1,2,2048]"
FAST_FAIL = {"spark.task.maxFailures": "1"}


def scenario(name, expected, job, args, conf=None, driver_memory="512m", executor_memory="512m",
             master=LOCAL_CLUSTER, on_line=None, note=""):
    return dict(name=name, expected=expected, job=job, args=args, conf=conf or {}, driver_memory=driver_memory,
                executor_memory=executor_memory, master=master, on_line=on_line, note=note)


def kill_executor_when(marker, delay):
    """An on_line hook: once `marker` appears, SIGKILL this application's executor JVMs after `delay` seconds."""
    state = {"done": False}

    def hook(line, ctx):
        if state["done"] or marker not in line:
            return
        state["done"] = True

        def later():
            time.sleep(delay)
            for pid in executor_pids(ctx["pgid"]):
                os.kill(pid, signal.SIGKILL)
        threading.Thread(target=later, daemon=True).start()
    return hook


def delete_shuffle_files_when(marker):
    state = {"done": False}

    def hook(line, ctx):
        if state["done"] or marker not in line:
            return
        state["done"] = True
        for f in glob.glob(os.path.join(ctx["local_dirs"], "**", "shuffle_*"), recursive=True):
            os.remove(f)
    return hook


def executor_pids(pgid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"CoarseGrainedExecutorBackend" in f.read():
                    pids.append(int(entry))
        except (OSError, ProcessLookupError):
            continue
    return pids


SCENARIOS = [
    scenario("executor-oom", "executor-oom", "collect_list_skew.py", ["300000"], FAST_FAIL,
             note="one key's collect_list buffer outgrows a 512m executor heap: java.lang.OutOfMemoryError, exit 52"),
    scenario("driver-oom", "driver-oom", "driver_collect.py", ["500000", "1024"],
             {"spark.driver.maxResultSize": "0"}, executor_memory="1g",
             note="collect() of ~500 MB of random rows into a 512m driver"),
    scenario("execution-memory", "execution-memory", "huge_row_sort.py", ["40", "16"],
             {**FAST_FAIL, "spark.memory.fraction": "0.02"},
             note="a sort of 16 MB rows with 2% of the heap for execution memory: SparkOutOfMemoryError"),
    scenario("container-memory-kill", "container-memory-kill", "long_tasks.py", ["2", "40"], FAST_FAIL,
             on_line=kill_executor_when("Starting task 0.0 in stage 0.0", 4),
             note="the executor JVM is SIGKILLed while its tasks run, as a memory-limit kill does: exit 137"),
    scenario("shuffle-fetch", "shuffle-fetch", "shuffle_reuse.py", ["8"],
             {**FAST_FAIL, "spark.stage.maxConsecutiveAttempts": "1"},
             on_line=delete_shuffle_files_when("SHUFFLE_READY"),
             note="the shuffle files vanish between two reads of one shuffle: FetchFailedException"),
    scenario("user-code", "user-code", "user_error.py", [], note="a ValueError raised by the driver script"),
    scenario("infrastructure", "infrastructure", "small_sum.py", ["1000"], master="spark://127.0.0.1:9",
             note="the standalone master does not answer (nothing listens on port 9)"),
    scenario("success", None, "small_sum.py", ["1000000"], note="a small job that succeeds"),
]


def spark_home():
    home = os.environ.get("SPARK_HOME")
    if home:
        return home
    import pyspark
    return os.path.dirname(pyspark.__file__)


def run(sc):
    home = spark_home()
    work = tempfile.mkdtemp(prefix=f"sluice-capture-{sc['name']}-")
    events = os.path.join(work, "events")
    local_dirs = os.path.join(work, "local")
    os.makedirs(events)
    os.makedirs(local_dirs)
    conf = {
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{events}",
        "spark.eventLog.rolling.enabled": "false", "spark.eventLog.compress": "false",
        "spark.eventLog.logStageExecutorMetrics": "true", "spark.executor.metrics.pollingInterval": "500",
        "spark.executor.memory": sc["executor_memory"], "spark.driver.memory": sc["driver_memory"],
        "spark.executor.cores": "2", "spark.cores.max": "2", **sc["conf"],
    }
    cmd = [os.path.join(home, "bin", "spark-submit"), "--master", sc["master"]]
    for k, v in sorted(conf.items()):
        cmd += ["--conf", f"{k}={v}"]
    cmd += [os.path.join(JOBS, sc["job"]), *sc["args"]]
    env = {**os.environ, "SPARK_HOME": home, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOCAL_DIRS": local_dirs, "SPARK_SCALA_VERSION": "2.13"}
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    ctx = {"pgid": proc.pid, "local_dirs": local_dirs}
    lines = []
    deadline = started + 300
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if sc["on_line"]:
            sc["on_line"](line, ctx)
        if time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    evidence = [l for l in lines if EVIDENCE.search(l)][:400]
    tail = [l for l in lines[-TAIL:] if l not in evidence]
    event_lines = []
    for f in sorted(glob.glob(os.path.join(events, "*"))):
        with open(f) as fh:
            for raw in fh:
                try:
                    e = json.loads(raw)
                except ValueError:
                    continue
                keep = e.get("Event") in EVENTS_KEPT
                if e.get("Event") == "SparkListenerTaskEnd" and e.get("Task End Reason", {}).get("Reason") != "Success":
                    keep = True
                    e.get("Task End Reason", {}).pop("Full Stack Trace", None)
                    e.get("Task End Reason", {}).pop("Stack Trace", None)
                    e.pop("Task Info", None)
                    e.pop("Task Metrics", None)
                if keep:
                    if e.get("Event") == "SparkListenerJobEnd":
                        exc = e.get("Job Result", {}).get("Exception", {})
                        exc.pop("Stack Trace", None)
                    event_lines.append(json.dumps(e, sort_keys=True))
    shutil.rmtree(work, ignore_errors=True)
    return {
        "scenario": sc["name"],
        "expectedKind": sc["expected"],
        "note": sc["note"],
        "command": " ".join(["spark-submit", "--master", sc["master"], *[f"--conf {k}={v}" for k, v in sorted(sc["conf"].items())],
                             f"--driver-memory {sc['driver_memory']}", f"--executor-memory {sc['executor_memory']}",
                             f"test/fixtures/spark-jobs/{sc['job']}", *sc["args"]]),
        "sparkVersion": spark_version(home),
        "capturedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "exitCode": code if code >= 0 else 128 - code,
        "wallSeconds": round(time.time() - started, 1),
        "driverLogExcerpt": evidence + ["--- tail ---"] + tail,
        "eventLogExcerpt": event_lines,
    }


def spark_version(home):
    jars = glob.glob(os.path.join(home, "jars", "spark-core_*.jar"))
    m = re.search(r"spark-core_[\d.]+-([\w.]+)\.jar", os.path.basename(jars[0])) if jars else None
    return m.group(1) if m else "unknown"


def main():
    wanted = set(sys.argv[1:])
    os.makedirs(OUT, exist_ok=True)
    for sc in SCENARIOS:
        if wanted and sc["name"] not in wanted:
            continue
        result = run(sc)
        with open(os.path.join(OUT, f"{sc['name']}.json"), "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(f"{sc['name']}: exit {result['exitCode']} in {result['wallSeconds']} s, "
              f"{len(result['driverLogExcerpt'])} log lines, {len(result['eventLogExcerpt'])} events", flush=True)


if __name__ == "__main__":
    main()
