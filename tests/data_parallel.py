#!/usr/bin/env python3
"""`mpirun -np 2 gan train`, driven as processes (issue 15). Two ranks of one thread each on DCGAN-16.

  data_parallel.py consistency GAN WORKDIR MPIRUN   two ranks end with identical weights (the run checks and says so),
                                                    with and without --sync-bn; one rank under mpirun is the plain
                                                    run, bit for bit
  data_parallel.py resume      GAN WORKDIR MPIRUN   a two-rank run resumed halfway equals the uninterrupted one bit for
                                                    bit; resuming with another number of ranks is refused
  data_parallel.py kill        GAN WORKDIR MPIRUN   SIGTERM to mpirun: the ranks stop together, rank 0 checkpoints, the
                                                    run resumes; SIGKILL of rank 1 mid-training: mpirun exits non-zero
                                                    within 30 s and no rank is left running; an error on rank 0
                                                    alone (ENOSPC) ends the job with that error
  data_parallel.py launch      GAN WORKDIR MPIRUN   torchrun-style WORLD_SIZE=2 without mpirun is refused with a clear
                                                    message; WORLD_SIZE=1 trains as a group of one

Exit 0: passed; 1: failed (the reason on stderr); 77: skipped (no Fashion-MNIST). WORKDIR is emptied first and removed
when the test passes.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from crash_safety import DATA, Failure, check, expect_same_run, read_safetensors  # noqa: E402  (the same run comparison)

FLAGS = ["--data", DATA, "--image-size", "16", "--nz", "8", "--ngf", "8", "--ndf", "8", "--batch-size", "8",
         "--seed", "11", "--no-progress", "--sample-every", "0"]
TIMEOUT_S = 120  # one run; only reached when something hangs
KILL_DEADLINE_S = 30  # a dead rank must end the job within this


def mpirun_cmd(mpirun, ranks):
    return [mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(ranks),
            "-x", "OMP_NUM_THREADS=1", "-x", "OPENBLAS_NUM_THREADS=1"]


def run(cmd, log, env=None):
    with open(log, "w") as out:
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT_S, env=env)
    with open(log) as f:
        return result.returncode, f.read()


def train(gan, mpirun, ranks, out, *extra):
    cmd = ([] if ranks == 0 else mpirun_cmd(mpirun, ranks)) + [gan, "train", *FLAGS, "--out", out, *extra]
    return run(cmd, out + ".log")


def expect_ok(result, what):
    rc, text = result
    check(rc == 0, f"{what}: exit {rc}\n{text}")
    return text


def consistency(gan, work, mpirun):
    for name, extra in (("two", []), ("two_sync_bn", ["--sync-bn"])):
        out = os.path.join(work, name)
        text = expect_ok(train(gan, mpirun, 2, out, "--steps", "6", "--checkpoint-every", "3", *extra), name)
        check("identical on all 2 ranks" in text, f"{name}: the run did not confirm identical ranks\n{text}")
        check("data parallel over 2 ranks" in text, f"{name}: not data parallel\n{text}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            check(len(f.readlines()) == 6, f"{name}: metrics.jsonl should hold 6 steps (rank 0 alone writes it)")
    # A group of one under mpirun (the pass in the step, every collective a no-op) is the plain run.
    plain, one = os.path.join(work, "plain"), os.path.join(work, "one_rank")
    expect_ok(train(gan, mpirun, 0, plain, "--steps", "4"), "plain")
    expect_ok(train(gan, mpirun, 1, one, "--steps", "4"), "one rank")
    expect_same_run(one, plain)


def resume(gan, work, mpirun):
    whole, halves = os.path.join(work, "whole"), os.path.join(work, "halves")
    expect_ok(train(gan, mpirun, 2, whole, "--steps", "6", "--checkpoint-every", "3"), "uninterrupted")
    expect_ok(train(gan, mpirun, 2, halves, "--steps", "3", "--checkpoint-every", "3"), "first half")
    rc, text = run(mpirun_cmd(mpirun, 2) + [gan, "train", "--resume", halves, "--steps", "6", "--no-progress",
                                            "--sample-every", "0", "--checkpoint-every", "3"], halves + ".resume.log")
    check(rc == 0, f"resume: exit {rc}\n{text}")
    expect_same_run(halves, whole)
    rc, text = run(mpirun_cmd(mpirun, 1) + [gan, "train", "--resume", whole, "--steps", "8", "--no-progress"],
                   whole + ".one_rank.log")
    check(rc != 0 and "same mpirun -np" in text, f"resuming a 2-rank run on 1 rank: exit {rc}\n{text}")


def descendants(pid):
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            children.append(int(entry))
    found = list(children)
    for child in children:
        found += descendants(child)
    return found


def rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                    return int(item.split(b"=", 1)[1])
    except OSError:
        pass
    return None


def start_long_run(gan, mpirun, out):
    """A 2-rank run of a million steps, returned once both ranks are past their first steps."""
    log = open(out + ".log", "w")
    job = subprocess.Popen(mpirun_cmd(mpirun, 2) + [gan, "train", *FLAGS, "--out", out, "--steps", "1000000",
                                                    "--checkpoint-every", "0"],
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    metrics = os.path.join(out, "metrics.jsonl")
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if os.path.exists(metrics) and sum(1 for _ in open(metrics)) >= 3:
            break
        if job.poll() is not None:
            log.close()
            raise Failure(f"the job ended before it was signalled (exit {job.returncode})")
        time.sleep(0.1)
    return job, log


def kill(gan, work, mpirun):
    # SIGTERM to mpirun (what SIGINT becomes too: mpirun forwards SIGTERM): every rank stops at the same step, rank 0
    # writes a checkpoint, and the run resumes on 2 ranks.
    out = os.path.join(work, "stopped")
    job, log = start_long_run(gan, mpirun, out)
    try:
        job.send_signal(signal.SIGTERM)
        try:
            job.wait(timeout=KILL_DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise Failure(f"SIGTERM to mpirun, but the job still runs after {KILL_DEADLINE_S} s")
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        log.close()
    text = open(out + ".log").read()
    check("stopped by SIGTERM" in text and os.path.exists(os.path.join(out, "checkpoint.safetensors")),
          f"SIGTERM: no checkpoint written\n{text}")
    stopped_at = int(read_safetensors(os.path.join(out, "checkpoint.safetensors"))[0]["step"])
    rc, text = run(mpirun_cmd(mpirun, 2) + [gan, "train", "--resume", out, "--steps", str(stopped_at + 2),
                                            "--no-progress", "--sample-every", "0"], out + ".resume.log")
    check(rc == 0 and "identical on all 2 ranks" in text, f"resume after SIGTERM: exit {rc}\n{text}")

    # SIGKILL of rank 1: mpirun ends rank 0 too, non-zero, within the deadline.
    out = os.path.join(work, "killed")
    job, log = start_long_run(gan, mpirun, out)
    try:
        ranks = {rank_of(p): p for p in descendants(job.pid) if rank_of(p) is not None}
        check(sorted(ranks) == [0, 1], f"expected ranks 0 and 1 under mpirun, found {ranks}")
        os.kill(ranks[1], signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            rc = job.wait(timeout=KILL_DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise Failure(f"rank 1 killed, but the job still runs after {KILL_DEADLINE_S} s")
        elapsed = time.monotonic() - killed_at
        check(rc != 0, f"the job exited 0 after rank 1 was killed")
        time.sleep(0.5)
        check(not os.path.exists(f"/proc/{ranks[0]}") or open(f"/proc/{ranks[0]}/stat").read().split()[2] == "Z",
              "rank 0 still runs after the job ended")
        print(f"data_parallel kill: rank 1 killed; mpirun exited {rc} after {elapsed:.1f} s")
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
        log.close()

    # An error on one rank alone (a full disk under rank 0's first checkpoint; rank 1 writes nothing) ends the whole
    # job with that error instead of leaving rank 1 waiting in the next all-reduce.
    out = os.path.join(work, "disk_full")
    started = time.monotonic()
    rc, text = run(mpirun_cmd(mpirun, 2) + ["-x", "GANCU_FAULT_WRITE=ENOSPC@0:checkpoint", gan, "train", *FLAGS,
                                            "--out", out, "--steps", "1000000", "--checkpoint-every", "2"],
                   out + ".log")
    elapsed = time.monotonic() - started
    check(rc != 0 and "rank 0: gan: error:" in text and "checkpoint" in text,
          f"a write error on rank 0: exit {rc}\n{text}")
    check(elapsed < KILL_DEADLINE_S, f"a write error on rank 0 took {elapsed:.0f} s to end the job")


def launch(gan, work, _mpirun):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env.update({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"})
    rc, text = run([gan, "train", *FLAGS, "--out", os.path.join(work, "torchrun"), "--steps", "2"],
                   os.path.join(work, "torchrun.log"), env)
    check(rc != 0 and "mpirun -np 2" in text, f"WORLD_SIZE=2 without mpirun: exit {rc}\n{text}")
    env["WORLD_SIZE"] = "1"
    rc, text = run([gan, "train", *FLAGS, "--out", os.path.join(work, "world1"), "--steps", "2"],
                   os.path.join(work, "world1.log"), env)
    check(rc == 0, f"WORLD_SIZE=1: exit {rc}\n{text}")


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("consistency", "resume", "kill", "launch"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, gan, work, mpirun = sys.argv[1:]
    if not os.path.exists(DATA):
        print(f"skipped: {DATA} not found", file=sys.stderr)
        return 77
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        {"consistency": consistency, "resume": resume, "kill": kill, "launch": launch}[mode](gan, work, mpirun)
    except Failure as e:
        print(f"data_parallel {mode}: FAILED: {e}", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"data_parallel {mode}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
