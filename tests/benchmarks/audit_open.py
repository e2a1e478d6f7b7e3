"""Run a harness under an audit hook that logs every file it opens or lists.

Usage (as a ``command_prefix`` of runlocal.run_phase): ``python audit_open.py harness.py PHASE``.
The log, one JSON line per event, goes to ``$REPRISE_TEST_AUDIT_LOG``.
"""

import json
import os
import runpy
import sys

_LOG = open(os.environ.pop("REPRISE_TEST_AUDIT_LOG"), "a", encoding="utf-8")  # noqa: SIM115
_WATCHED = {"open", "os.listdir", "os.scandir", "os.walk", "glob.glob", "shutil.copyfile"}


def _hook(event: str, args: tuple) -> None:
    if event in _WATCHED and args:
        target = args[0]
        if isinstance(target, bytes):
            target = target.decode("utf-8", "replace")
        if isinstance(target, str | os.PathLike):
            _LOG.write(json.dumps({"event": event, "path": os.fspath(target)}) + "\n")
            _LOG.flush()


sys.addaudithook(_hook)
harness = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(harness))
runpy.run_path(harness, run_name="__main__")
