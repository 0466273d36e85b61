"""fabric-remote demo runner: runs pytest on the synced project inside the (emulated) Spark job.

Arguments: PROJECT_DIR RESULTS_DIR, both relative to the default lakehouse's Files folder.
Writes RESULTS_DIR/results.xml (junit, xunit1, with captured output) and
RESULTS_DIR/status.json (pytest's exit code). Exits 0 whenever pytest ran, so a failed job
means the infrastructure failed, not the tests.
"""
import json
import os
import subprocess
import sys

root = os.environ.get("FABRIC_EMULATOR_LAKEHOUSE_ROOT", "/lakehouse/default")
project = os.path.join(root, "Files", sys.argv[1])
results = os.path.join(root, "Files", sys.argv[2])
os.makedirs(results, exist_ok=True)

command = [
    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
    "-o", "junit_family=xunit1", "-o", "junit_logging=all",
    "--junitxml=" + os.path.join(results, "results.xml"),
]
env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
code = subprocess.call(command, cwd=project, env=env)
with open(os.path.join(results, "status.json"), "w") as f:
    json.dump({"pytest_exit_code": code}, f)
print(f"pytest exited with {code}")
sys.exit(0)
