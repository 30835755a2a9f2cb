"""One line per target from bench/results/*.json (written by the other scripts)."""

from __future__ import annotations

import json

from _common import RESULTS, verdict


def main() -> None:
    def load(name):
        path = RESULTS / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    lines = []
    if cli := load("cli_latency"):
        for name, f in cli["figures"].items():
            if f["target"]:
                lines.append((f"{name} <= {f['target']}x import typer", f"{f['ratio']:.2f}x", f["pass"]))
    if scale := load("scale"):
        for name, f in scale["figures"].items():
            if f["pass"] is not None:
                lines.append((f"{name} <= 2.5x import typer", f"{f['ratio']:.2f}x", f["pass"]))
        flat = scale["flatness"]["svc list --json"]
        lines.append((f"svc list --json flat, N=200/N=1 <= {scale['flat_target']}x", f"{flat:.2f}x", flat <= scale["flat_target"]))
        lines.append(("svc list: one engine request at N=1/50/200",
                      "/".join(str(len(v)) for k, v in scale["engine_requests"].items() if k.startswith("svc list")),
                      scale["one_request"]))
    if prov := load("provisioning"):
        lines.append((f"svc add <= {prov['target']}x raw docker run + readiness", f"{prov['ratio']:.2f}x", prov["pass"]))
    if imp := load("importtime"):
        for name, s in imp["commands"].items():
            heavy = [p for p in ("docker", "rich", "yaml", "requests", "pydantic") if s["imported"][p]]
            if name.startswith(("svc dsn", "env export", "svc list")):
                lines.append((f"{name}: no docker/rich/yaml/requests/pydantic import", ",".join(heavy) or "none", not heavy))
    width = max(len(text) for text, _, _ in lines)
    for text, figure, ok in lines:
        print(f"{text:<{width}}  {figure:>8}  {verdict(ok)}")


if __name__ == "__main__":
    main()
