"""Render benchmarks/results/*.json as docs/benchmarks.png (one panel per benchmark that has results)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.png"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    panels = [(n, d) for n in ("rebuild", "emulation", "size", "synth_scale") if (d := load(n))]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for axis, (name, data) in zip(axes[0], panels, strict=True):
        rows = data["rows"]
        if name == "rebuild":
            labels = [f"{r['service'].split('/')[1]}\n{r['platform'].split('/')[1]}" for r in rows]
            x = range(len(rows))
            for offset, key, label in (
                (-0.27, "cold_s", "cold"),
                (0, "warm_registry_s", "warm: registry cache"),
                (0.27, "warm_local_s", "warm: local cache"),
            ):
                axis.bar([i + offset for i in x], [r[key] for r in rows], width=0.27, label=label)
            axis.set_xticks(list(x), labels)
            axis.set_ylabel("seconds")
            axis.set_title("Rebuild after a one-line change")
            axis.legend(fontsize=8)
        elif name == "emulation":
            labels = [r["service"].split("/")[1] for r in rows]
            x = range(len(rows))
            axis.bar([i - 0.2 for i in x], [r["native_amd64_s"] for r in rows], width=0.4, label="amd64 native")
            axis.bar([i + 0.2 for i in x], [r["emulated_arm64_s"] for r in rows], width=0.4, label="arm64 under QEMU")
            for i, r in zip(x, rows, strict=True):
                axis.annotate(f"{r['ratio']}x", (i + 0.2, r["emulated_arm64_s"]), ha="center", va="bottom", fontsize=9)
            axis.set_xticks(list(x), labels)
            axis.set_ylabel("seconds (cold build)")
            axis.set_title("Native vs emulated")
            axis.legend(fontsize=8)
        elif name == "size":
            labels = [r["service"].split("/")[1] for r in rows]
            x = range(len(rows))
            axis.bar([i - 0.2 for i in x], [r["naive_mb"] for r in rows], width=0.4, label="naive (one stage)")
            axis.bar([i + 0.2 for i in x], [r["slipway_mb"] for r in rows], width=0.4, label="Slipway (multi-stage)")
            axis.set_xticks(list(x), labels)
            axis.set_ylabel("MB compressed (amd64)")
            axis.set_title("Image size")
            axis.legend(fontsize=8)
        else:
            services = [r["services"] for r in rows]
            axis.plot(services, [r["seconds"] for r in rows], marker="o", label="synth seconds")
            twin = axis.twinx()
            twin.plot(
                services,
                [r["platform_roles"] for r in rows],
                marker="s",
                color="tab:orange",
                label="roles in the platform account",
            )
            twin.axhline(1000, linestyle=":", color="tab:orange", linewidth=1)
            twin.set_ylabel("roles in the platform account (quota 1,000)")
            axis.set_xlabel("services")
            axis.set_ylabel("seconds")
            axis.set_title("Synth at scale (cdk-nag on)")
    figure.suptitle(f"Slipway benchmarks - {panels[0][1]['machine']}", fontsize=9)
    figure.tight_layout()
    OUT.parent.mkdir(exist_ok=True)
    figure.savefig(OUT, dpi=110)
    print(f"chart: {OUT}")


if __name__ == "__main__":
    main()
