"""One row per model with every headline number: Table 1, fidelity against the truth, Table 2.

The numbers are spread over three stage reports (evaluate's metrics.json and fidelity.json, classify's
metrics.json); a researcher comparing models wants them side by side, in one table and in one MLflow run
per model (g2i.commands.compare). Nothing is computed here: every value is copied from a report, so the
row and the report cannot disagree.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..io.jsonable import finite_or_none

# (column, label for the Markdown table, lower is better?) in the order a reader scans them
COLUMNS = (
    ("fd_cnn", "FD_cnn", True),
    ("kid_cnn", "KID_cnn", True),
    ("psnr", "PSNR", False),
    ("ssim", "SSIM", False),
    ("ms_ssim", "MS-SSIM", False),
    ("ssim_pairwise", "pairwise SSIM (diversity)", True),
    ("e4_sweep_slope", "e4 sweep slope", False),
    ("e4_to_truth", "e4 / truth", False),
    ("e4_to_ceiling", "e4 / ceiling", False),
    ("label_effect_ratio_ad_cn", "AD-CN gen/real", None),
    ("label_effect_ratio_mci_cn", "MCI-CN gen/real", None),
    ("conditional_r", "conditional r", False),
    ("memorisation_max", "memorisation max SSIM", True),
    ("table2_accuracy", "Table 2 accuracy", False),
    ("table2_gain_vs_real", "gain vs real only", False),
    ("table2_gain_vs_balanced", "gain vs class-balanced real", False),
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return finite_or_none(value)


def model_rows(evaluation: Mapping[str, Any], fidelity: Mapping[str, Any],
               classify: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """{model: {column: value}} for every model in evaluate's metrics.json ('real' is not a model).

    Intervals ride along as <column>_ci95_lo / _hi where a report has them. A model without a genotype
    input has no e4 sweep (None), as in the reports.
    """
    rows: dict[str, dict[str, float | None]] = {}
    for model, table1 in evaluation.items():
        if model == "real" or not isinstance(table1, Mapping):
            continue
        fid = (fidelity.get("models") or {}).get(model, {})
        # a model without a genotype input has no e4 sweep (its images are identical at every dose): n/a, not 0
        sweep = {} if fid.get("apoe_images_identical_across_doses") else fid.get("apoe_sweep") or {}
        sweep_ci = sweep.get("ci95") or [None, None]
        table2 = classify.get(model) or {}
        accuracy_ci = (table2.get("ci95") or {}).get("accuracy") or [None, None]
        gain = (table2.get("vs_real") or {}).get("accuracy") or {}
        gain_ci = gain.get("ci95") or [None, None]
        # against Table 2's class-balanced control: the generated images' own share of the gain
        gain_balanced = (table2.get("vs_balanced") or {}).get("accuracy") or {}
        gain_balanced_ci = gain_balanced.get("ci95") or [None, None]
        row = {
            "fd_cnn": table1.get("fd_cnn"), "kid_cnn": table1.get("kid_cnn"), "psnr": table1.get("psnr"),
            "ssim": table1.get("ssim"), "ms_ssim": table1.get("ms_ssim"), "ssim_pairwise": table1.get("ssim_pairwise"),
            "e4_sweep_slope": sweep.get("effect"), "e4_sweep_slope_ci95_lo": sweep_ci[0],
            "e4_sweep_slope_ci95_hi": sweep_ci[1],
            "e4_to_truth": table1.get("sweep_to_truth") if sweep else None,
            "e4_to_ceiling": table1.get("sweep_to_ceiling") if sweep else None,
            "e4_to_ceiling_ci95_lo": table1.get("sweep_to_ceiling_ci95_lo") if sweep else None,
            "e4_to_ceiling_ci95_hi": table1.get("sweep_to_ceiling_ci95_hi") if sweep else None,
            "label_effect_ratio_ad_cn": table1.get("label_effect_ratio_ad_cn"),
            "label_effect_ratio_mci_cn": table1.get("label_effect_ratio_mci_cn"),
            "conditional_r": table1.get("conditional_r"), "conditional_r_ci95_lo": table1.get("conditional_r_ci95_lo"),
            "conditional_r_ci95_hi": table1.get("conditional_r_ci95_hi"),
            "memorisation_max": (fid.get("memorisation") or {}).get("max"),
            "table2_accuracy": (table2.get("mean") or {}).get("accuracy"),
            "table2_accuracy_ci95_lo": accuracy_ci[0], "table2_accuracy_ci95_hi": accuracy_ci[1],
            "table2_gain_vs_real": gain.get("mean"), "table2_gain_vs_real_ci95_lo": gain_ci[0],
            "table2_gain_vs_real_ci95_hi": gain_ci[1],
            "table2_gain_vs_balanced": gain_balanced.get("mean"),
            "table2_gain_vs_balanced_ci95_lo": gain_balanced_ci[0],
            "table2_gain_vs_balanced_ci95_hi": gain_balanced_ci[1],
        }
        rows[model] = {key: _number(value) for key, value in row.items()}
    return rows


def _cell(row: Mapping[str, float | None], column: str) -> str:
    value = row.get(column)
    if value is None:
        return "n/a"
    text = f"{value:+.4f}" if column == "e4_sweep_slope" else f"{value:.3g}" if abs(value) >= 100 else f"{value:.3f}"
    lo, hi = row.get(f"{column}_ci95_lo"), row.get(f"{column}_ci95_hi")
    return f"{text} ({lo:.3g} to {hi:.3g})" if lo is not None and hi is not None else text


def render_markdown(rows: Mapping[str, Mapping[str, float | None]], names: Mapping[str, str]) -> str:
    """The model comparison as Markdown: one row per model, every headline column, 95 % CIs in brackets."""
    lines = ["# Models side by side", "",
             "Generated by `g2i compare` from reports/evaluate/{metrics,fidelity}.json and reports/classify/metrics.json; "
             "95 % intervals in brackets where the report has one. The same numbers are one MLflow run per model "
             "(run name `model-<variant>`, its stage runs nested under it).", "",
             "| Model | " + " | ".join(label for _, label, _ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for model, row in rows.items():
        lines.append(f"| {names.get(model, model)} | " + " | ".join(_cell(row, c) for c, _, _ in COLUMNS) + " |")
    return "\n".join(lines) + "\n"
