"""The Markdown tables of the reports: Table 1 (image quality), the gene-to-image fidelity report with its
planted-truth section, and Table 2 (classification), from the numbers evaluation computes."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..vocabulary import display_name

REAL = "real"                  # Table 2's row of the classifier trained on real slices alone
# Table 2's control row: the real slices, each class topped up to sample.per_class by repeating its own slices.
# Augmented rows differ from real-only in size and class balance as well as in the generated images; against
# this row only the generated images differ.
REAL_BALANCED = "real_balanced"
# Table 2's paired comparisons, {metrics.json key: baseline row}; `compared_with` says which rows get which
COMPARISONS = {"vs_real": REAL, "vs_balanced": REAL_BALANCED}
_COMPARISON_NOTE = {REAL_BALANCED: " the same size and class balance, so a change here is the generated images' own:"}
SENTENCE_METRIC = "accuracy"   # the metric of Table 2's one-sentence verdicts


# ---------------------------------------------------------------------------------------------------- Table 1, fidelity


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/c"
    return f"{value:.{digits}f}"


def table1_markdown(quality: Mapping[str, Mapping[str, Any]], fid_note: str) -> str:
    lines = ["# Table 1: image quality of generated slices", "",
             "PSNR, SSIM, MS-SSIM: generated vs the real slice of the conditioning subject (higher = closer). "
             "`pairwise` columns: similarity BETWEEN generated images, the paper's MS-SSIM / SSIM column "
             "(lower = more diverse; near 1 = mode collapse). FD_cnn / KID_cnn: Frechet distance and KID in the "
             "features of a CNN trained on the real training slices (lower = closer to real). "
             f"FID (Inception-V3): {fid_note or 'computed'}.", "",
             "| Model | PSNR ↑ | SSIM ↑ | MS-SSIM ↑ | FID ↓ | FD_cnn ↓ | KID_cnn ↓ | MS-SSIM pairwise ↓ | SSIM pairwise ↓ | n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for model, q in quality.items():
        lines.append(f"| {display_name(model)} | {_fmt(q['psnr'], 2)} | {_fmt(q['ssim'])} | {_fmt(q['ms_ssim'])} | "
                     f"{_fmt(q['fid'], 2)} | {_fmt(q['fd_cnn'], 3)} | {_fmt(q['kid_cnn'], 4)} | "
                     f"{_fmt(q['ms_ssim_pairwise'])} | {_fmt(q['ssim_pairwise'])} | {q['n_generated_test']} |")
    return "\n".join(lines) + "\n"


def fidelity_markdown(results: Mapping[str, Mapping[str, Any]], truth: dict | None, validation: dict | None) -> str:
    lines = ["# Gene-to-image fidelity", ""]
    if truth is not None:
        lines += [f"Ground truth (synthetic cohort's generative model): +{truth['e4_log_per_allele']:.3f} log "
                  f"ventricle volume per e4 allele, i.e. {truth['log_area_per_allele']:+.4f} log slice area per allele "
                  f"(area ~ volume^{truth['area_exponent']:.2f}); a ratio of {math.exp(truth['log_area_per_allele']):.3f} "
                  "per allele."]
    else:
        lines += ["No ground truth: the inputs are not the synthetic cohort, so the sweep is reported without a target."]
    if validation:
        lines += ["", f"Area measure validated on the real slices: Spearman rho {validation['spearman_rho']:.3f} with the "
                      f"3D ventricle volume (n = {validation['n']})."]
    lines += ["", "## APOE e4 dose sweep (same noise and label, dose 0 / 1 / 2)", "",
              "| Model | log area per allele (95 % CI) | ratio per allele | monotone | vs truth | panel shuffle mean abs log ratio |",
              "|---|---|---|---|---|---|"]
    for model, r in results.items():
        s, vs = r["apoe_sweep"], r.get("apoe_vs_truth")
        ci = s.get("ci95") or [None, None]
        verdict = "images identical (no genotype input)" if r["apoe_images_identical_across_doses"] else (
            "n/a" if vs is None else
            f"{'same' if vs['same_direction'] else 'opposite/none'} direction, {_fmt(vs['ratio_measured_to_expected'], 2)}x size"
            f"{', truth inside CI' if vs['truth_within_ci'] else ''}")
        lines.append(f"| {display_name(model)} | {_fmt(s.get('effect'), 4)} ({_fmt(ci[0], 4)}, {_fmt(ci[1], 4)}) | "
                     f"{_fmt(s.get('ratio_per_allele'), 3)} | {_fmt(s.get('fraction_monotone'), 2)} | {verdict} | "
                     f"{_fmt(r['panel_shuffle']['mean_abs_log_ratio'], 4)} |")
    lines += ["", "## Label fidelity and memorisation", "",
              "Label fidelity: accuracy of a CNN trained on real training slices at recovering the diagnosis each "
              "generated image was conditioned on (its accuracy on the real test slices is the ceiling to compare with). "
              "Memorisation: SSIM of each generated test image to its nearest training slice; the reference row is "
              "held-out REAL slices against the same training slices.", "",
              "| Model | label fidelity | real-test accuracy | nn-SSIM mean | nn-SSIM max | > threshold | real reference > threshold |",
              "|---|---|---|---|---|---|---|"]
    for model, r in results.items():
        lf, m = r["label_fidelity"], r["memorisation"]
        lines.append(f"| {display_name(model)} | {_fmt(lf['accuracy'], 3)} | {_fmt(lf['real_test_accuracy'], 3)} | "
                     f"{_fmt(m.get('mean'), 3)} | {_fmt(m.get('max'), 3)} | {_fmt(m.get('fraction_above_threshold'), 3)} | "
                     f"{_fmt(m.get('reference', {}).get('fraction_above_threshold'), 3)} |")
    lines += ["", verdict_paragraph(results, truth)]
    return "\n".join(lines) + "\n"


def verdict_paragraph(results: Mapping[str, Mapping[str, Any]], truth: dict | None) -> str:
    """One sentence per model on whether it reproduces the APOE effect, the paper's model first."""
    order = sorted(results, key=lambda m: (m != "g2i_l_att", m))
    parts = []
    for model in order:
        r, s = results[model], results[model]["apoe_sweep"]
        if r["apoe_images_identical_across_doses"]:
            parts.append(f"{display_name(model)} ignores the genotype by construction (identical images at every dose).")
            continue
        effect, ci = s.get("effect"), s.get("ci95") or [None, None]
        if truth is None or effect is None:
            parts.append(f"{display_name(model)}: {_fmt(effect, 4)} log area per allele.")
            continue
        vs = r["apoe_vs_truth"]
        significant = ci[0] is not None and (ci[0] > 0 or ci[1] < 0)
        shuffle = r["panel_shuffle"]["mean_abs_log_ratio"]
        parts.append(f"{display_name(model)}: {effect:+.4f} log area per allele (95 % CI {ci[0]:+.4f} to {ci[1]:+.4f}) "
                     f"against {truth['log_area_per_allele']:+.4f} expected: "
                     f"{'same direction' if vs['same_direction'] else 'not the expected direction'}"
                     f"{' and distinguishable from zero' if significant else ', not distinguishable from zero'}, "
                     f"{_fmt(vs['ratio_measured_to_expected'], 2)}x the expected size"
                     + (f"; for scale, swapping in other subjects' panel SNPs (APOE kept) moves log area by "
                        f"{shuffle:.3f} on average (the cohort's polygenic score acts on the ventricles too)."
                        if shuffle is not None else "."))
    return "**Verdict.** " + " ".join(parts)


def truth_markdown(ref: Any, results: Mapping[str, Mapping[str, Any]], display) -> str:
    """The truth section of fidelity.md: ceiling, autoencoder, per-model ratios with intervals.
    (`ref`: a truth_fidelity.TruthReference, not imported here so that Table 2 does not depend on it.)"""

    def ci(pair, digits=3):
        lo, hi = pair
        return "unbounded" if lo is None or hi is None else f"{lo:.{digits}f} to {hi:.{digits}f}"

    def ratio(x):
        return "n/c" if x["ratio"] is None else f"{x['ratio']:.2f} ({ci(x['ci95'], 2)})"

    c, ct = ref.ceiling, ref.ceiling_test
    lines = ["## Against the planted truth", "",
             f"Planted e4 effect on log ventricle area: {ref.truth:+.4f} per allele.", "",
             "| Measure | e4 slope (log area per allele) | 95 % CI | n |", "|---|---|---|---|",
             f"| Identifiability ceiling: real TRAINING slices | {c['slope']:+.4f} | {ci(c['ci95'], 4)} | {c['n']} |",
             f"| Real TEST slices | {ct['slope']:+.4f} | {ci(ct['ci95'], 4)} | {ct['n']} |"]
    if ref.autoencoder is not None:
        a = ref.autoencoder
        lines.append(f"| Autoencoder reconstructions of the training slices | {a['slope']:+.4f} | {ci(a['ci95'], 4)} "
                     f"| {a['n']} |")
    d = ref.drawn["train"]
    lines += ["", f"The planted multiplier itself (log ventricle volume per allele, no image): parameter "
                  f"{ref.planted_log_volume:+.4f}; these training subjects drew {d['slope']:+.4f} "
                  f"(95 % CI {ci(d['ci95'], 4)}), their within-diagnosis slope."]
    excludes = c["ci95"][0] > 0 or c["ci95"][1] < 0
    lines += ["", ("The ceiling's interval excludes 0: the e4 effect is identifiable from these training slices."
                   if excludes else
                   "**The ceiling's interval includes 0: with this many training subjects the e4 effect is not "
                   "identifiable from the real slices, so no generator trained on them can be expected to "
                   "reproduce it; the model rows below cannot pass or fail on the e4 sweep.**"), ""]
    rc = ref.real_test_conditional
    lines += ["| Model | sweep / ceiling (95 % CI) | sweep / truth (95 % CI) | AD-CN gen/real (95 % CI) | "
              "MCI-CN gen/real (95 % CI) | conditional r (95 % CI) | perfect-generator r, same k |",
              "|---|---|---|---|---|---|---|",
              f"| Real test slices (k = 1) | | | 1 | 1 | {rc['r']:.3f} ({ci(rc['ci95'])}) | "
              f"{rc['ceiling']['r']:.3f} ({ci(rc['ceiling']['ci95'])}) |"]
    for model, r in results.items():
        if "not_measurable" in r:
            lines.append(f"| {display(model)} | not measurable: {r['not_measurable']} | | | | | |")
            continue
        s, le, cond = r["sweep"], r["label_effect_ratio"], r["conditional"]
        lines.append(f"| {display(model)} | {ratio(s['to_ceiling'])} | {ratio(s['to_truth'])} | {ratio(le['AD-CN'])} | "
                     f"{ratio(le['MCI-CN'])} | {cond['r']:.3f} ({ci(cond['ci95'])}) | "
                     f"{cond['ceiling']['r']:.3f} ({ci(cond['ceiling']['ci95'])}), k = {cond['k']:.1f} |")
    guided = {m: r["guidance"] for m, r in results.items() if "guidance" in r}
    for model, g in guided.items():
        lines += ["", f"### Classifier-free guidance sweep: {display(model)} (validation subjects)", "",
                  "| w_dx | w_g | e4 sweep slope (95 % CI) | sweep / ceiling | conditional r (val) | perfect r | "
                  "FD_cnn | label-effect error |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in g["per_w"].values():
            sw, cv = row["sweep"], row["conditional_val"]
            error = "" if row["label_error"] is None or not np.isfinite(row["label_error"]) else f"{row['label_error']:.2f}"
            lines.append(f"| {row['w']:g} | {row['w_g']:g} | {sw['effect']:+.4f} ({ci(sw['ci95'], 4)}) | "
                         f"{ratio(row['sweep_to_ceiling'])} | {cv['r']:.3f} ({ci(cv['ci95'])}) | "
                         f"{cv['ceiling']['r']:.3f} | {row['fd_cnn']:.2f} | {error} |")
        if g["chosen"] is not None:
            lines += ["", f"Chosen w_dx = {g['chosen']:g}, w_g = {g['chosen_genotype']:g} ({g['rule']})."]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- Table 2


def table2_row_label(name: str) -> str:
    """A Table 2 row's training data in words: "Real only" (REAL), "Real only, class-balanced" (REAL_BALANCED),
    else "Real + <model's display name>"."""
    return {REAL: "Real only", REAL_BALANCED: "Real only, class-balanced"}.get(name) or f"Real + {display_name(name)}"


def _cell(result: Mapping[str, Any], metric: str) -> str:
    """'mean (lo, hi)', or the mean alone where one seed leaves the interval undefined."""
    ci = result["ci95"][metric]
    mean = f"{result['mean'][metric]:.3f}"
    return mean if ci is None else f"{mean} ({ci[0]:.3f}, {ci[1]:.3f})"


def augmentation_sentence(name: str, result: Mapping[str, Any], real: Mapping[str, Any],
                          metric: str = SENTENCE_METRIC, baseline: str = REAL) -> str:
    """One markdown bullet: did row `name` (a model's generated slices added, or REAL_BALANCED's repeats) change
    `metric` against the `baseline` row, whose result is `real`?

    The verdict rests on the paired difference over seeds (`paired_difference`): a change is claimed only
    when its 95 % t-interval excludes 0. Whether the two rows' own intervals overlap is stated as well.
    """
    from ..evaluation.classifier import intervals_overlap, paired_difference

    diff = paired_difference(result, real, [metric])[metric]
    ours, base, d, ci = result["mean"][metric], real["mean"][metric], diff["mean"], diff["ci95"]
    what, against = metric.replace("_", " "), table2_row_label(baseline).lower()
    change = "class balancing" if name == REAL_BALANCED else "augmentation"
    if ci is None:
        return (f"- {table2_row_label(name)}: {what} {ours:.3f} vs {base:.3f} {against}, a difference of {d:+.3f} "
                "from a single seed: no interval, so no evidence of a change either way.")
    if ci[0] > 0:
        verdict = f"{change} raised {what} by {d:.3f}"
    elif ci[1] < 0:
        verdict = f"{change} lowered {what} by {-d:.3f}"
    else:
        verdict = f"{change} did not clearly change {what} ({d:+.3f}, the interval includes 0)"
    overlap = intervals_overlap(result["ci95"][metric], real["ci95"][metric])
    return (f"- {table2_row_label(name)}: {verdict}: {ours:.3f} vs {base:.3f} {against}; paired over "
            f"{diff['n_seeds']} seeds, 95 % CI of the difference {ci[0]:+.3f} to {ci[1]:+.3f}; "
            f"the two rows' 95 % intervals {'overlap' if overlap else 'do not overlap'}.")


def compared_with(name: str, rows: Mapping[str, Any]) -> dict[str, str]:
    """{COMPARISONS key: baseline row} for row `name` of a block of rows: every row but real only against real
    only; a model's row also against the class-balanced control, where that ran."""
    return {key: base for key, base in COMPARISONS.items() if name not in (REAL, base) and base in rows}


def _sentences(rows: Mapping[str, Mapping[str, Any]], where: str = "") -> list[str]:
    """The verdict bullets under a Table 2 block (`where`: e.g. " at f = 0.25"), one list per baseline."""
    lines = []
    for key, base in COMPARISONS.items():
        bullets = [augmentation_sentence(name, result, rows[base], baseline=base)
                   for name, result in rows.items() if key in compared_with(name, rows)]
        if bullets:
            lines += ["", f"Against {table2_row_label(base).lower()}{where} ({SENTENCE_METRIC}):"
                      + _COMPARISON_NOTE.get(base, ""), "", *bullets]
    return lines


def table2_markdown(results: Mapping[float, Mapping[str, Mapping[str, Any]]], seeds: Sequence[int],
                    n_test: Mapping[str, int], real_subjects: Mapping[float, Mapping[str, int]] | None = None,
                    per_class: int | None = None) -> str:
    """Table 2 and, when `results` holds fractions below 1, the "Real-data scarcity" section.

    `results`: {fraction: {"real" | <model>: evaluate_over_seeds result}}; fraction 1.0 must be present
    (it is Table 2). `real_subjects`: {fraction: {diagnosis: real training subjects kept}}, for the
    scarcity table's first line.
    """
    from ..evaluation.classifier import METRICS, fraction_key

    rows = results[1.0]
    fill = f"sample.per_class = {per_class}" if per_class is not None else "sample.per_class"
    lines = ["# Table 2: AD-stage classification (CN / MCI / AD)", "",
             f"The paper's 2-layer CNN; mean (95 % t-interval) over {len(seeds)} seeds {list(seeds)}. Test set: "
             f"held-out subjects ({', '.join(f'{k} {v}' for k, v in n_test.items())}). Augmented rows add generated "
             f"slices until each class has {fill} training images. The intervals cover the training randomness "
             "(initialisation, batch order, dropout) on one fixed test set, not the sampling of test subjects."
             + (f" Real only, class-balanced: the control for the augmented rows' size and class balance, each class "
                f"topped up to {fill} by repeating its own real slices (drawn with replacement), no generated ones."
                if REAL_BALANCED in rows else ""), "",
             "| Training data | n train | " + " | ".join(m.replace('_', ' ') for m in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for name, result in rows.items():
        lines.append(f"| {table2_row_label(name)} | {result['n_train']} | "
                     + " | ".join(_cell(result, m) for m in METRICS) + " |")
    lines += _sentences(rows)
    fractions = sorted(results)
    if len(fractions) > 1:
        lines += ["", "## Real-data scarcity", "",
                  f"{SENTENCE_METRIC.capitalize()}, mean (95 % t-interval) over the same seeds, when the classifier "
                  "sees only a stratified random fraction f of the real training subjects (the same subjects for "
                  "every row; those of a smaller f lie within those of a larger one). Augmented rows still fill each "
                  f"class to {fill} with generated slices, so they use more of them at smaller f.", "",
                  "| Training data | " + " | ".join(f"f = {fraction_key(f)}" for f in fractions) + " |",
                  "|---|" + "---|" * len(fractions)]
        if real_subjects:
            lines.append("| Real subjects (" + " / ".join(next(iter(real_subjects.values()))) + ") | "
                         + " | ".join(" / ".join(str(n) for n in real_subjects[f].values()) for f in fractions) + " |")
        for name in rows:
            lines.append(f"| {table2_row_label(name)} | "
                         + " | ".join(_cell(results[f][name], SENTENCE_METRIC) for f in fractions) + " |")
        smallest = fractions[0]
        lines += _sentences(results[smallest], f" at f = {fraction_key(smallest)}")
    return "\n".join(lines) + "\n"


__all__ = ["table1_markdown", "fidelity_markdown", "verdict_paragraph", "truth_markdown", "table2_markdown",
           "augmentation_sentence", "table2_row_label", "compared_with", "REAL", "REAL_BALANCED", "COMPARISONS",
           "SENTENCE_METRIC"]
