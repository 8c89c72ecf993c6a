"""A pre-imported CLI process that forks one child per command: the crash suite's way of running
``mtls-config`` as a real, separately killable process many times without paying the interpreter's and the
package's start-up (seconds on a loaded CI machine) each time.

Protocol, one JSON line each way on stdin/stdout:
  {"op": "run", "argv": [...], "cwd": "...", "env": {...}, "out": "path", "err": "path"} -> {"pid": N}
  {"op": "wait", "pid": N} -> {"status": exit code, or -signal}
The zygote holds no threads and no event loop, so forking it is safe; each child runs ``main(argv)`` with its
stdout/stderr sent to the given files and exits with its code.
"""

from __future__ import annotations

import json
import os
import sys

import mtls_config.cli.reconcile
import mtls_config.emulator
import mtls_config.engine  # noqa: F401
from mtls_config.cli.main import main


def _child(request: dict[str, object]) -> None:
    os.chdir(str(request["cwd"]))
    env = request.get("env")
    if isinstance(env, dict):
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
    for fd, key in ((1, "out"), (2, "err")):
        target = os.open(str(request[key]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    code = 1
    try:
        argv = request["argv"]
        assert isinstance(argv, list)
        code = main([str(a) for a in argv])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "run":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, int] = {"pid": pid}
        else:
            _, status = os.waitpid(int(request["pid"]), 0)
            answer = {"status": os.waitstatus_to_exitcode(status)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
