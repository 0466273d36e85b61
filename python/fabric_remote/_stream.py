"""Runs `fabric-remote run --stream-reports` and hands out what it writes, as it writes it.

The child's stdout carries JSON lines (report-log records, then one ``FabricRemoteFinish``);
its stderr carries lines for people. Two reader threads put both on one queue, so the main
thread (the only one that touches pytest) can wait on a single thing with a timeout and stay
responsive to Ctrl-C. The child runs in its own process group: a Ctrl-C at the terminal
reaches pytest only, and pytest forwards exactly one SIGINT per Ctrl-C, which the binary
counts (the first cancels the job, the second stops waiting for it, the third exits).
"""

import json
import os
import queue
import signal
import subprocess
import threading

RECORD = "record"
STDERR = "stderr"
NOISE = "noise"  # a stdout line that is not a JSON object
END = "end"  # both streams closed


class Stream:
    def __init__(self, argv, cwd, env=None):
        self.queue = queue.Queue()
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )
        self._open = 2
        for pipe, kind in ((self.proc.stdout, RECORD), (self.proc.stderr, STDERR)):
            threading.Thread(target=self._read, args=(pipe, kind), daemon=True).start()

    def _read(self, pipe, kind):
        try:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if kind == RECORD:
                    try:
                        data = json.loads(line)
                    except ValueError:
                        data = None
                    if isinstance(data, dict):
                        self.queue.put((RECORD, data))
                    elif line.strip():
                        self.queue.put((NOISE, line))
                else:
                    self.queue.put((STDERR, line))
        finally:
            pipe.close()
            self.queue.put((END, kind))

    def next(self, timeout):
        """The next ``(kind, value)``, ``(END, None)`` once both streams closed, or ``None``
        when nothing came within ``timeout`` seconds."""
        while True:
            try:
                kind, value = self.queue.get(timeout=timeout)
            except queue.Empty:
                return None
            if kind != END:
                return kind, value
            self._open -= 1
            if self._open == 0:
                return END, None

    def interrupt(self):
        """One SIGINT to the child (a Ctrl-C as the binary counts them)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGINT)
            except OSError:
                pass

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass

    def wait(self, timeout):
        """The child's exit status, killing it when it has not ended within ``timeout``."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()
