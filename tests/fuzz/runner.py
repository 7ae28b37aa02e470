"""A worker process (tests/fuzz/worker.py) that runs fuzz cases one at a time: a case that
crashes or hangs it is a failure naming the case, and the next case gets a fresh worker."""
import json
import os
import select
import subprocess
import sys
import tempfile

import fastconv

# Seconds one case may take: the largest cases run in milliseconds; the rest is the machine's load.
CASE_TIMEOUT = 120


class Worker:
    def __init__(self):
        self.process = None

    def _start(self):
        # The worker imports the fastconv this test imported, from wherever it is installed.
        package_root = os.path.dirname(os.path.dirname(fastconv.__file__))
        repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.stderr = tempfile.TemporaryFile("w+")  # a file, not a pipe: warnings cannot fill it and block
        path = os.pathsep.join([package_root, repo_root, os.environ.get("PYTHONPATH", "")])
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=repo_root,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True, env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"})

    def run(self, case):
        """None when the case passes, else what went wrong."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        self.process.stdin.write(json.dumps(case) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], CASE_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if line:
            answer = json.loads(line)
            return None if answer["status"] == "ok" else answer["detail"]
        return self._died(ready)

    def _died(self, answered):
        if not answered:
            self.process.kill()
        status = self.process.wait()
        self.stderr.seek(0)
        error = self.stderr.read()[-3000:]
        self.process = None
        what = f"exited with status {status}" if answered else f"hung for {CASE_TIMEOUT} s"
        return f"the worker {what}: {error}"

    def close(self):
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()
