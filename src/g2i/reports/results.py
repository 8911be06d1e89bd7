"""docs/results/<profile>.{json,md}: one run's findings, generated from its reports (never typed by hand).

Reads a finished pipeline run's reports/evaluate/{fidelity,metrics}.json and reports/classify/metrics.json
(and its generated sets, for the e4 sweep figure) and writes a JSON that machines can check, a Markdown
page made from the same data, and the figures. The goals are those of the study (issue 11): for the
paper's model, the e4 dose sweep reaches half the identifiability ceiling with an interval that excludes
0, the generated AD-CN and MCI-CN differences are within 25 % of the real ones, and the conditional-mean
r reaches 0.9 of what a perfect generator reaches with the same k.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import G2IError
from ..evaluation.tables import COMPARISONS, table2_row_label
from ..vocabulary import display_name
from ..io.atomic import atomic_file, write_json

PAPER_MODEL = "g2i_l_att"
GOALS = {"sweep_to_ceiling": 0.5, "label_effect_tolerance": 0.25, "conditional_r_fraction": 0.9}
FIGURES = ("fig2_samples.png", "fig3_group_differences.png")


def _read(path: Path) -> Any:
    if not path.is_file():
        raise G2IError(f"{path}: missing; the run did not finish (rerun `make study` to resume)")
    return json.loads(path.read_text())


def _pair(x) -> list | None:
    return None if x is None else [None if v is None else float(v) for v in x]


def model_entry(fidelity: Mapping[str, Any], quality: Mapping[str, Any], guidance: float) -> dict:
    """One model's row of the results JSON."""
    sweep = fidelity["apoe_sweep"]
    t = fidelity.get("truth") or {}
    entry: dict[str, Any] = {"sweep_slope": sweep.get("effect"), "sweep_ci95": _pair(sweep.get("ci95")),
                             "genotype_input": not fidelity["apoe_images_identical_across_doses"],
                             "fd_cnn": quality.get("fd_cnn"), "guidance": guidance}
    if "not_measurable" in t:   # a measure failed part-way (e.g. images with no ventricles): no partial row
        entry["not_measurable"] = t["not_measurable"]
    elif "sweep" in t:
        entry.update(sweep_to_ceiling=t["sweep"]["to_ceiling"]["ratio"],
                     sweep_to_ceiling_ci95=_pair(t["sweep"]["to_ceiling"]["ci95"]),
                     sweep_to_truth=t["sweep"]["to_truth"]["ratio"],
                     sweep_to_truth_ci95=_pair(t["sweep"]["to_truth"]["ci95"]),
                     label_effect_ratio={c: r["ratio"] for c, r in t["label_effect_ratio"].items()},
                     label_effect_ratio_ci95={c: _pair(r["ci95"]) for c, r in t["label_effect_ratio"].items()},
                     label_effects={c: {"effect": t["label_effects"][c]["effect"],
                                        "ci95": _pair(t["label_effects"][c]["ci95"])} for c in ("AD-CN", "MCI-CN")},
                     conditional_r=t["conditional"]["r"], conditional_r_ci95=_pair(t["conditional"]["ci95"]),
                     conditional_r_ceiling=t["conditional"]["ceiling"]["r"],
                     conditional_r_ceiling_ci95=_pair(t["conditional"]["ceiling"]["ci95"]),
                     conditional_k=t["conditional"]["k"])
    if "guidance" in t and "not_measurable" not in t:
        entry["guidance_sweep"] = {key: {"w": row["w"], "w_g": row.get("w_g", row["w"]),
                                         "label_error": row.get("label_error"),
                                         "sweep_slope": row["sweep"]["effect"],
                                         "sweep_ci95": _pair(row["sweep"]["ci95"]),
                                         "sweep_to_ceiling": row["sweep_to_ceiling"]["ratio"],
                                         "sweep_to_ceiling_ci95": _pair(row["sweep_to_ceiling"]["ci95"]),
                                         "conditional_r_val": row["conditional_val"]["r"],
                                         "conditional_r_val_ci95": _pair(row["conditional_val"]["ci95"]),
                                         "conditional_r_val_ceiling": row["conditional_val"]["ceiling"]["r"],
                                         "fd_cnn": row["fd_cnn"]}
                                   for key, row in t["guidance"]["per_w"].items()}
        if t["guidance"]["chosen"] is not None:   # sample generated this model's sets at the chosen scales
            entry["guidance"] = entry["guidance_chosen"] = t["guidance"]["chosen"]
            entry["genotype_guidance"] = t["guidance"].get("chosen_genotype", t["guidance"]["chosen"])
    return entry


def goals(entry: Mapping[str, Any]) -> dict:
    """The study's goals for one model: each with its measured value and whether it is met."""
    if "sweep_to_ceiling" not in entry:
        return {}
    lo, hi = entry["sweep_ci95"]
    ratio = entry["sweep_to_ceiling"]
    label = entry["label_effect_ratio"]
    tol = GOALS["label_effect_tolerance"]
    r, ceiling = entry["conditional_r"], entry["conditional_r_ceiling"]
    return {
        "sweep": {"value": ratio, "target": f">= {GOALS['sweep_to_ceiling']} of the ceiling, CI excluding 0",
                  "met": bool(ratio is not None and ratio >= GOALS["sweep_to_ceiling"] and (lo > 0 or hi < 0))},
        "label_effect": {"value": label, "target": f"within {tol:.0%} of the real test slices",
                         "met": all(v is not None and abs(v - 1) <= tol for v in label.values())},
        "conditional_r": {"value": r / ceiling if ceiling else None,
                          "target": f">= {GOALS['conditional_r_fraction']} of the perfect-generator r",
                          "met": bool(ceiling and r >= GOALS["conditional_r_fraction"] * ceiling)},
    }


def table2_entries(classify: Mapping[str, Any]) -> tuple[dict, dict]:
    """Table 2 rows {row: {accuracy_mean, accuracy_ci95, ...}} and the scarcity curve {fraction: rows}."""

    def row(r):
        out = {"accuracy_mean": r["mean"]["accuracy"], "accuracy_ci95": _pair((r.get("ci95") or {}).get("accuracy")),
               "n_train": r["n_train"]}
        for key in COMPARISONS:
            if key in r:
                out[f"accuracy_{key}"] = {"mean": r[key]["accuracy"]["mean"], "ci95": _pair(r[key]["accuracy"]["ci95"])}
        if "n_real" in r:
            out["n_real"] = r["n_real"]
        return out

    table = {name: row(r) for name, r in classify.items() if name != "scarcity"}
    scarcity = {f: {name: row(r) for name, r in rows.items()} for f, rows in classify.get("scarcity", {}).items()}
    return table, scarcity


def build_results(workdir: Path, run_info: Mapping[str, Any]) -> dict:
    """The results JSON of the run in `workdir` (see the module docstring)."""
    import yaml

    from ..config import resolve

    reports = workdir / "reports"
    fidelity = _read(reports / "evaluate" / "fidelity.json")
    quality = _read(reports / "evaluate" / "metrics.json")
    classify_path = reports / "classify" / "metrics.json"
    classify = json.loads(classify_path.read_text()) if classify_path.is_file() else None   # None: not run yet
    probe_path = reports / "probe" / "probe.json"
    params = resolve(yaml.safe_load((workdir / "params.yaml").read_text()))
    ident = fidelity.get("identifiability")
    if not ident:
        raise G2IError(f"{reports / 'evaluate/fidelity.json'}: no truth measures (the synthetic ground truth was "
                       "missing or too small); nothing to report against the truth")
    c, ct, ae = ident["ceiling_train"], ident["ceiling_test"], ident["autoencoder"]
    guidance = float(params["sampling"]["guidance_scale"])
    models = {m: model_entry(f, quality[m], guidance) for m, f in fidelity["models"].items()}
    table2, scarcity = table2_entries(classify) if classify is not None else ({}, {})
    split = json.loads((reports / "data" / "split.json").read_text()) if (reports / "data/split.json").is_file() else {}
    return {
        "profile": run_info["profile"], "commit": run_info["commit"], "wall_seconds": run_info["wall_seconds"],
        "parts": run_info.get("parts", []), "cpu": run_info.get("cpu"), "cores": run_info.get("cores"),
        "command": "make study" if run_info["profile"] == "study" else f"g2i study --profile {run_info['profile']}",
        "cohort": {"n_subjects": params["synthesize"]["n_subjects"], "split": split,
                   "training_steps": {"autoencoder": params["training"]["autoencoder"]["max_steps"],
                                      "diffusion": params["training"]["diffusion"]["max_steps"],
                                      "diffusion_batch_size": params["training"]["diffusion"]["batch_size"]},
                   "sampler": f"{params['sampling']['sampler']}-{params['sampling']['num_inference_steps']}"},
        "ceiling": {"slope": c["slope"], "ci95": _pair(c["ci95"]), "n": c["n"], "truth": ident["truth"],
                    "test_slope": ct["slope"], "test_ci95": _pair(ct["ci95"]), "test_n": ct["n"],
                    "identifiable": bool(c["ci95"][0] > 0 or c["ci95"][1] < 0)},
        "drawn": {"planted_log_volume_per_allele": ident["drawn_log_volume"]["planted"],
                  **{split: {"slope": ident["drawn_log_volume"][split]["slope"],
                             "ci95": _pair(ident["drawn_log_volume"][split]["ci95"])} for split in ("train", "test")}}
        if "drawn_log_volume" in ident else None,
        "autoencoder": None if ae is None else {"slope": ae["slope"], "ci95": _pair(ae["ci95"]),
                                                "to_ceiling": ae["ratio_to_ceiling"]["ratio"],
                                                "to_ceiling_ci95": _pair(ae["ratio_to_ceiling"]["ci95"])},
        "real_test": {"label_effects": {k: {"effect": ident["label_effects_real_test"][k]["effect"],
                                            "ci95": _pair(ident["label_effects_real_test"][k]["ci95"])}
                                        for k in ("AD-CN", "MCI-CN")},
                      "conditional_r": ident["real_test_conditional"]["r"],
                      "conditional_r_ci95": _pair(ident["real_test_conditional"]["ci95"]),
                      "conditional_r_ceiling_k1": ident["real_test_conditional"]["ceiling"]["r"]},
        "measurement": {k: ident["measurement"][k] for k in ("area_exponent", "measurement_sd", "n")},
        "models": models,
        "goals": {PAPER_MODEL: goals(models[PAPER_MODEL])} if PAPER_MODEL in models else {},
        "table2": table2,
        "scarcity": scarcity,
        "probe": probe_summary(json.loads(probe_path.read_text())) if probe_path.is_file() else None,
    }


def probe_summary(probe: Mapping[str, Any]) -> dict:
    """Per model: encoder and per-t denoiser e4/swap and e4/condition ratios, attention over uniform."""
    out = {}
    for model, r in probe.items():
        out[model] = {"encoder_e4_over_swap": (r.get("encoder") or {}).get("e4_over_swap"),
                      "denoiser": {t: {k: r["denoiser"][t].get(k) for k in ("e4_over_swap", "e4_over_condition")}
                                   for t in sorted(r["denoiser"], key=int)},
                      "attention_over_uniform": (r.get("attention") or {}).get("over_uniform")}
    return out


# ---------------------------------------------------------------------------------------------------- figures


def sweep_figure(counterfactual: Path, path: Path, model: str, n_subjects: int = 4) -> None:
    """Rows: subjects; columns: e4 dose 0, 1, 2 on the same noise, and the dose 2 - dose 0 difference."""
    from ..generation.sets import load_set
    from .figures import pyplot, save_figure

    cf = load_set(counterfactual.parent, counterfactual.stem)
    plt = pyplot()
    n = min(n_subjects, len(cf["row"]))
    fig, axes = plt.subplots(n, 4, figsize=(8.2, 2.0 * n + 0.6), squeeze=False)
    diff_limit = 0.5
    for i in range(n):
        images = [cf[f"dose_{d}"][i].astype(np.float32) for d in (0, 1, 2)]
        for j, image in enumerate(images):
            axes[i, j].imshow(image, cmap="gray", vmin=-1, vmax=1)
        shown = axes[i, 3].imshow(images[2] - images[0], cmap="RdBu_r", vmin=-diff_limit, vmax=diff_limit)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    for j, title in enumerate(("e4 dose 0", "dose 1", "dose 2", "dose 2 − dose 0")):
        axes[0, j].set_title(title, fontsize=9)
    fig.colorbar(shown, ax=axes[:, 3], fraction=0.05, label="intensity difference")
    fig.suptitle(f"{display_name(model)}: APOE e4 dose sweep (same noise, label, other SNPs)", fontsize=10)
    save_figure(fig, path)


def fidelity_figure(data: Mapping[str, Any], path: Path) -> None:
    """Three panels with 95 % intervals: e4 sweep / ceiling, generated / real label effects, r vs its ceiling."""
    from .figures import pyplot, save_figure

    models = [m for m, e in data["models"].items() if "sweep_to_ceiling" in e]
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(models) + 1.8), sharey=True)
    y = np.arange(len(models))

    def bars(ax, values, cis, color, offset=0.0, label=None):
        for k, (v, ci) in enumerate(zip(values, cis)):
            if v is None:
                continue
            lo, hi = ci if ci and None not in ci else (v, v)
            ax.errorbar(v, y[k] + offset, xerr=[[v - lo], [hi - v]], fmt="o", color=color, capsize=3,
                        label=label if k == 0 else None)

    e = data["models"]
    bars(axes[0], [e[m]["sweep_to_ceiling"] for m in models], [e[m]["sweep_to_ceiling_ci95"] for m in models], "C0")
    axes[0].axvline(1, color="k", lw=0.8)
    axes[0].axvline(GOALS["sweep_to_ceiling"], color="C3", ls="--", lw=0.8)
    axes[0].set_xlabel("e4 sweep slope / ceiling (real training slices)")
    for off, (contrast, color) in zip((-0.15, 0.15), (("AD-CN", "C1"), ("MCI-CN", "C2"))):
        bars(axes[1], [e[m]["label_effect_ratio"][contrast] for m in models],
             [e[m]["label_effect_ratio_ci95"][contrast] for m in models], color, off, contrast)
    axes[1].axvspan(1 - GOALS["label_effect_tolerance"], 1 + GOALS["label_effect_tolerance"], color="0.9")
    axes[1].axvline(1, color="k", lw=0.8)
    axes[1].set_xlabel("generated / real log-area difference")
    axes[1].legend(fontsize=8, loc="lower right")
    bars(axes[2], [e[m]["conditional_r"] for m in models], [e[m]["conditional_r_ci95"] for m in models], "C0",
         -0.15, "model")
    bars(axes[2], [e[m]["conditional_r_ceiling"] for m in models], [e[m]["conditional_r_ceiling_ci95"] for m in models],
         "0.5", 0.15, "perfect generator")
    axes[2].set_xlabel("conditional-mean r (test subjects)")
    axes[2].legend(fontsize=8, loc="lower right")
    axes[0].set_yticks(y, [display_name(m) for m in models])
    axes[0].invert_yaxis()
    fig.suptitle("Fidelity against the planted truth (95 % intervals)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------------------- markdown


def _guidance_text(models: Mapping[str, Any]) -> str:
    """'guidance w = 1; G2I-l w/ Att at w_dx = 1, w_g = 5 (chosen on validation)': each model's scales."""
    default = [e["guidance"] for m, e in models.items() if e.get("guidance_chosen") is None]
    chosen = [f"{display_name(m)} at w_dx = {e['guidance']:g}, w_g = {e.get('genotype_guidance', e['guidance']):g}"
              for m, e in models.items() if e.get("guidance_chosen") is not None]
    text = f"guidance w = {default[0]:g}" if default else ""
    if chosen:
        text += ("; " if text else "guidance: ") + ", ".join(chosen) + " (chosen on the validation subjects)"
    return text


def _f(v, digits=3, signed=False):
    if v is None:
        return "n/c"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _ci(pair, digits=3):
    if not pair or None in pair:
        return "unbounded"
    return f"{pair[0]:.{digits}f} to {pair[1]:.{digits}f}"


def _parts_text(parts) -> str:
    """The invocations behind the wall time, whenever there was more than one or one was cut short."""
    if len(parts) < 2 and not any(p.get("interrupted") or p.get("earlier_unrecorded") for p in parts):
        return ""

    def notes(p) -> str:
        said = []
        if p.get("earlier_unrecorded"):
            said.append("resumed after an invocation whose time was not recorded: the total is a lower bound")
        elif p["resumed"]:
            said.append("resumed: ran only the stages not yet up to date")
        if p.get("interrupted"):
            said.append("interrupted: counted to its last heartbeat")
        return f" ({'; '.join(said)})" if said else ""

    return (" in all, over " + str(len(parts)) + " invocation" + "s" * (len(parts) > 1) + ": " + "; ".join(
        f"{p['seconds'] / 60:.1f} min at `{p['commit'][:8]}`{notes(p)}" for p in parts))


def _split_text(split: Mapping[str, Any]) -> str:
    parts = [f"{name} {counts.get('total')} (" + " / ".join(f"{d} {counts[d]}" for d in ("CN", "MCI", "AD") if d in counts)
             + ")" for name, counts in split.items() if isinstance(counts, Mapping)]
    return "subjects per split: " + ", ".join(parts) if parts else "split not recorded"


def results_markdown(data: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    c, ae = data["ceiling"], data["autoencoder"]
    minutes = data["wall_seconds"] / 60
    at_least = "at least " if any(p.get("earlier_unrecorded") for p in data.get("parts", [])) else ""
    lines = [f"# G2I `{data['profile']}` profile: results against the planted truth", "",
             f"Generated by `{data['command']}` (g2i.reports.results) from the run's reports; do not edit. "
             f"Commit `{data['commit'][:12]}`; wall time **{at_least}{minutes:.1f} min** on {data.get('cpu')} "
             f"({data.get('cores')} cores){_parts_text(data.get('parts', []))}. "
             f"Machine-readable: `{data['profile']}.json` beside this file.", "",
             f"Cohort: {data['cohort']['n_subjects']} synthetic subjects; {_split_text(data['cohort']['split'])}. "
             f"Training: autoencoder {data['cohort']['training_steps']['autoencoder']} steps, each diffusion variant "
             f"{data['cohort']['training_steps']['diffusion']} steps at batch {data['cohort']['training_steps']['diffusion_batch_size']}; "
             f"sampler {data['cohort']['sampler']}, {_guidance_text(data['models'])}.", "",
             "The test set departs from the paper's 27 subjects per class on purpose: synthetic subjects are free, "
             "and ~150 per class are needed for intervals narrow enough to tell a model from chance.", "",
             "## Identifiability ceiling and autoencoder", "",
             "| What | e4 slope of log ventricle area per allele | 95 % CI | n |", "|---|---|---|---|",
             f"| Planted truth | {_f(c['truth'], 4, True)} | | |",
             f"| Real training slices (the ceiling) | {_f(c['slope'], 4, True)} | {_ci(c['ci95'], 4)} | {c['n']} |",
             f"| Real test slices | {_f(c['test_slope'], 4, True)} | {_ci(c['test_ci95'], 4)} | {c['test_n']} |"]
    if ae:
        lines.append(f"| Autoencoder reconstructions (training) | {_f(ae['slope'], 4, True)} | {_ci(ae['ci95'], 4)} | |")
    if data.get("drawn"):
        d = data["drawn"]
        lines += ["", f"Why the ceiling sits where it does: on the planted volume multiplier itself (no image, no "
                      f"measure), the model's parameter is {_f(d['planted_log_volume_per_allele'], 4, True)} log volume "
                      f"per allele; the training subjects drew {_f(d['train']['slope'], 4, True)} (95 % CI "
                      f"{_ci(d['train']['ci95'], 4)}) and the test subjects {_f(d['test']['slope'], 4, True)} "
                      f"({_ci(d['test']['ci95'], 4)}) within diagnosis: the residual anatomy "
                      "(`synthesize.effects.ventricles.log_sd`) leaves that much sampling error at this cohort size."]
    lines += ["", ("The ceiling's interval excludes 0: the training slices carry an identifiable e4 effect."
                   if c["identifiable"] else
                   "**The ceiling's interval includes 0: the e4 effect is not identifiable from these training slices.**")]
    if ae:
        lines.append(f"Autoencoder / ceiling: {_f(ae['to_ceiling'], 2)} (95 % CI {_ci(ae['to_ceiling_ci95'], 2)}).")
    rt = data["real_test"]
    lines += ["", "## Models against the truth (test subjects)", "",
              "| Model | e4 sweep slope (95 % CI) | / ceiling (95 % CI) | / truth | AD-CN gen/real (95 % CI) | "
              "MCI-CN gen/real (95 % CI) | conditional r (95 % CI) | perfect r, same k | FD_cnn |",
              "|---|---|---|---|---|---|---|---|---|",
              f"| Real test slices | | | | AD-CN {_f(rt['label_effects']['AD-CN']['effect'], 3, True)} | "
              f"MCI-CN {_f(rt['label_effects']['MCI-CN']['effect'], 3, True)} | {_f(rt['conditional_r'])} "
              f"({_ci(rt['conditional_r_ci95'])}) | {_f(rt['conditional_r_ceiling_k1'])} (k = 1) | |"]
    for m, e in data["models"].items():
        if "sweep_to_ceiling" not in e:
            lines.append(f"| {display_name(m)} | {e.get('not_measurable', 'n/c')} | | | | | | | {_f(e['fd_cnn'], 2)} |")
            continue
        sweep = (f"{_f(e['sweep_slope'], 4, True)} ({_ci(e['sweep_ci95'], 4)})" if e["genotype_input"]
                 else "no genotype input")
        lines.append(
            f"| {display_name(m)} | {sweep} | {_f(e['sweep_to_ceiling'], 2)} ({_ci(e['sweep_to_ceiling_ci95'], 2)}) | "
            f"{_f(e['sweep_to_truth'], 2)} | {_f(e['label_effect_ratio']['AD-CN'], 2)} "
            f"({_ci(e['label_effect_ratio_ci95']['AD-CN'], 2)}) | {_f(e['label_effect_ratio']['MCI-CN'], 2)} "
            f"({_ci(e['label_effect_ratio_ci95']['MCI-CN'], 2)}) | {_f(e['conditional_r'])} ({_ci(e['conditional_r_ci95'])}) | "
            f"{_f(e['conditional_r_ceiling'])}, k = {e['conditional_k']:.1f} | {_f(e['fd_cnn'], 2)} |")
    for m, e in data["models"].items():
        if "guidance_sweep" not in e:
            continue
        lines += ["", f"## Classifier-free guidance sweep: {display_name(m)}", "",
                  "On the validation subjects (the scales are chosen there, never on the test set). w_dx scales the "
                  "diagnosis, w_g the genotype given the diagnosis (w_g = w_dx: one scale for both); the label-effect "
                  "error is mean |generated / real training - 1| over AD-CN and MCI-CN.", "",
                  "| w_dx | w_g | e4 sweep slope (95 % CI) | / ceiling (95 % CI) | conditional r, val (95 % CI) | "
                  "perfect r | FD_cnn | label-effect error |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in e["guidance_sweep"].values():
            lines.append(f"| {row['w']:g} | {row.get('w_g', row['w']):g} | {_f(row['sweep_slope'], 4, True)} "
                         f"({_ci(row['sweep_ci95'], 4)}) | "
                         f"{_f(row['sweep_to_ceiling'], 2)} ({_ci(row['sweep_to_ceiling_ci95'], 2)}) | "
                         f"{_f(row['conditional_r_val'])} ({_ci(row['conditional_r_val_ci95'])}) | "
                         f"{_f(row['conditional_r_val_ceiling'])} | {_f(row['fd_cnn'], 2)} | "
                         f"{_f(row.get('label_error'), 2)} |")
        if e.get("guidance_chosen") is not None:
            lines += ["", f"Chosen by the measurement on the validation subjects: w_dx = {e['guidance_chosen']:g} "
                          "(generated label effects closest to the real training slices'), w_g = "
                          f"{e.get('genotype_guidance', e['guidance_chosen']):g} (lowest FD_cnn at that w_dx). This "
                          "model's test, augmentation and dose-sweep sets, and so every figure above and Table 2, are "
                          "generated at these scales; the other models at `sampling.guidance_scale`."]
    for m, g in data["goals"].items():
        lines += ["", f"## Goals for {display_name(m)}", "", "| Goal | measured | target | met |", "|---|---|---|---|"]
        for name, goal in g.items():
            value = goal["value"]
            shown = ", ".join(f"{k} {_f(v, 2)}" for k, v in value.items()) if isinstance(value, dict) else _f(value, 2)
            lines.append(f"| {name.replace('_', ' ')} | {shown} | {goal['target']} | {'yes' if goal['met'] else '**no**'} |")
    if data.get("probe"):
        probe = {m: p for m, p in data["probe"].items() if p["encoder_e4_over_swap"] is not None}
        ts = list(next(iter(probe.values()))["denoiser"]) if probe else []
        lines += ["", "## Where the e4 effect goes: conditioning probe (`reports/probe/probe.md`)", "",
                  "RMS change when e4 goes 0 -> 2, over the change from swapping in another subject's panel (own e4 "
                  "kept). The planted model moves log volume ~2.8x more for the first, so a model that learned it "
                  "shows ratios well above 1. Attention: mean weight on the APOE token over uniform.", "",
                  "| Model | encoder | " + " | ".join(f"eps, t = {t}" for t in ts) + " | attention on APOE |",
                  "|---|---|" + "---|" * len(ts) + "---|"]
        for m, p in probe.items():
            lines.append(f"| {display_name(m)} | {_f(p['encoder_e4_over_swap'], 2)} | "
                         + " | ".join(_f(p["denoiser"][t]["e4_over_swap"], 2) for t in ts)
                         + f" | {_f(p['attention_over_uniform'], 2)} |")
    lines += ["", "## Table 2: CN / MCI / AD classification (test subjects)", "",
              "Accuracy, mean over seeds with a 95 % t-interval; the paired difference with real-only uses the same seeds.",
              "", "| Training data | n train | accuracy (95 % CI) | vs real only (95 % CI) | vs class-balanced real "
              "(95 % CI) |", "|---|---|---|---|---|"]
    if not data["table2"]:
        lines.append("| not run: the run was stopped before the `classify` stage | | | | |")
    for name, r in data["table2"].items():
        vs = [r.get(f"accuracy_{key}") for key in COMPARISONS]
        lines.append(f"| {table2_row_label(name)} | {r['n_train']} | {_f(r['accuracy_mean'])} "
                     f"({_ci(r['accuracy_ci95'])}) | "
                     + " | ".join("" if not d else f"{_f(d['mean'], 3, True)} ({_ci(d['ci95'])})" for d in vs) + " |")
    if data["scarcity"]:
        fractions = sorted(data["scarcity"], key=float)
        lines += ["", "### Real-data scarcity", "",
                  "| Training data | " + " | ".join(f"{float(f):.0%} of real subjects" for f in fractions) + " |",
                  "|---|" + "---|" * len(fractions)]
        for name in data["scarcity"][fractions[-1]]:
            cells = []
            for f in fractions:
                r = data["scarcity"][f].get(name)
                cells.append("" if r is None else f"{_f(r['accuracy_mean'])} ({_ci(r['accuracy_ci95'])})")
            lines.append(f"| {table2_row_label(name)} | " + " | ".join(cells) + " |")
    lines += ["", "## Figures", ""]
    for caption, name in figures.items():
        lines += [f"**{caption}**", "", f"![{caption}]({name})", ""]
    return "\n".join(lines) + "\n"


def write_results(workdir: Path, out_dir: Path, run_info: Mapping[str, Any]) -> list[Path]:
    """Write <out_dir>/<profile>.json, .md and <profile>/*.png from the run in `workdir`; returns the paths."""
    from ..io.jsonable import json_safe

    data = json_safe(build_results(Path(workdir), run_info))
    profile = data["profile"]
    fig_dir = out_dir / profile
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    for name in FIGURES:
        source = Path(workdir) / "reports" / "evaluate" / name
        if source.is_file():
            shutil.copyfile(source, fig_dir / name)
    if (fig_dir / FIGURES[0]).is_file():
        figures["Samples per class (Fig. 2): real test slices and each model's images from the same conditions"] = \
            f"{profile}/{FIGURES[0]}"
    counterfactual = Path(workdir) / "data" / "generated" / PAPER_MODEL / "counterfactual.npz"
    if counterfactual.is_file():
        sweep_figure(counterfactual, fig_dir / "e4_sweep.png", PAPER_MODEL)
        figures["The APOE e4 dose sweep"] = f"{profile}/e4_sweep.png"
    fidelity_figure(data, fig_dir / "fidelity.png")
    figures["Fidelity against the planted truth, with 95 % intervals"] = f"{profile}/fidelity.png"
    if (fig_dir / FIGURES[1]).is_file():
        figures["Group differences (Fig. 3)"] = f"{profile}/{FIGURES[1]}"
    json_path, md_path = out_dir / f"{profile}.json", out_dir / f"{profile}.md"
    write_json(json_path, data)
    with atomic_file(md_path, "w") as handle:
        handle.write(results_markdown(data, figures))
    return [json_path, md_path, *sorted(fig_dir.glob("*.png"))]
