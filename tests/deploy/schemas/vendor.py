"""Refresh the vendored schemas the deployment tests validate against (no network at test time).

    .venv/bin/python -m tests.deploy.schemas.vendor            # the pinned versions below

- ``kubernetes/``: the strict JSON schemas of Kubernetes (no unknown fields) for the kinds that
  ``deploy/kubernetes/`` uses, from the ``kubernetes-validate`` wheel (Apache-2.0, which bundles
  schemas generated from the Kubernetes OpenAPI document): one file per kind and a
  ``_definitions.json`` pruned to the definitions those kinds reach.
- ``compose-spec.json``: the Compose Specification's schema (Apache-2.0), from the
  ``check-jsonschema`` wheel's vendored copy, with its licence.

The KEDA ``ScaledObject`` and the ``Kustomization`` schemas are not vendored: no registry
package ships them, so ``keda-scaledobject.json`` and ``kustomization.json`` beside this file
are minimal structural schemas written by hand (see their descriptions).

Wheels are fetched with ``pip download`` (the machine's pip configuration applies).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"
KUBERNETES_DIR = "kubernetes-json-schema/v1.37.0-local-strict"
CHECK_JSONSCHEMA = "check-jsonschema==0.39.0"
KINDS = (
    "configmap-v1",
    "deployment-apps-v1",
    "horizontalpodautoscaler-autoscaling-v2",  # its behavior: also the KEDA schema's
    "job-batch-v1",
    "namespace-v1",
    "persistentvolumeclaim-v1",
    "poddisruptionbudget-policy-v1",
    "secret-v1",
    "service-v1",
)
REF = re.compile(r"#/\$defs/([^\"]+)")  # from a kind: "/api/_definitions.json#/$defs/…"


def download(requirement: str, into: Path) -> zipfile.ZipFile:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(into), requirement],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    return zipfile.ZipFile(next(into.glob(f"{name}-*.whl")))


def reachable(defs: dict[str, Any], roots: list[Any]) -> dict[str, Any]:
    """The definitions ``roots`` refer to, transitively."""
    seen: dict[str, Any] = {}
    todo = [name for root in roots for name in REF.findall(json.dumps(root))]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = defs[name]
        todo.extend(REF.findall(json.dumps(defs[name])))
    return dict(sorted(seen.items()))


def vendor_kubernetes(wheel: zipfile.ZipFile) -> None:
    prefix = f"kubernetes_validate/{KUBERNETES_DIR}"
    out = HERE / "kubernetes"
    out.mkdir(exist_ok=True)
    kinds = {kind: json.loads(wheel.read(f"{prefix}/{kind}.json")) for kind in KINDS}
    definitions = json.loads(wheel.read(f"{prefix}/_definitions.json"))
    definitions["$defs"] = reachable(definitions["$defs"], list(kinds.values()))
    for kind, schema in kinds.items():
        (out / f"{kind}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    (out / "_definitions.json").write_text(json.dumps(definitions, sort_keys=True) + "\n")
    licence = next(n for n in wheel.namelist() if n.endswith("licenses/LICENSE"))
    (out / "LICENSE.kubernetes-validate").write_bytes(wheel.read(licence))
    (out / "SOURCE").write_text(
        f"{KUBERNETES_VALIDATE}: {KUBERNETES_DIR}, pruned by tests/deploy/schemas/vendor.py\n"
    )


def vendor_compose(wheel: zipfile.ZipFile) -> None:
    base = "check_jsonschema/builtin_schemas/vendor"
    (HERE / "compose-spec.json").write_bytes(wheel.read(f"{base}/compose-spec.json"))
    (HERE / "LICENSE.compose-spec").write_bytes(wheel.read(f"{base}/licenses/LICENSE.compose-spec"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vendor_kubernetes(download(KUBERNETES_VALIDATE, Path(tmp)))
        vendor_compose(download(CHECK_JSONSCHEMA, Path(tmp)))


if __name__ == "__main__":
    main()
