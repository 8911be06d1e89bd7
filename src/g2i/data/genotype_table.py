"""The `genotypes` stage: one table of PTID, diagnosis, panel effect-allele counts and APOE e4 dose.

Inputs: the QC'd PLINK filesets of every phase, ADNIMERGE.csv (and APOERES.csv when present), the T1
images. Phases are combined by rsID: a panel SNP is kept when every phase carries it after QC and its
alleles align; subjects genotyped in several phases take the last phase listed in params. Subjects
missing an image, genotypes, a diagnosis or an e4 dose are excluded and counted, never silently.
"""

from __future__ import annotations

import glob
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import G2IError
from ..genetics.encoding import Alignment, align, effect_allele_counts
from ..genetics.panel import APOE_SNPS, load_panel
from ..genetics.plink import check_fileset, read_fam
from ..io.atomic import atomic_file, write_json
from .clinical import read_apoeres, read_baseline

E4_SNP = APOE_SNPS[0]  # rs429358: its C allele marks e4
E4_ALLELE_FREQ = 0.14


@dataclass
class GenotypeInputs:
    qc_dir: Path  # <qc_dir>/<phase>.{bed,bim,fam}
    raw_filesets: dict[str, Path]  # phase -> raw prefix (to tell QC-removed samples from ungenotyped ones)
    adnimerge: Path
    apoeres: Path | None
    t1_patterns: list[str]
    diagnosis_map: dict[str, str]
    root: Path  # data.root: patterns and the written t1_path are relative to it


DUPLICATE_POLICIES = ("error", "drop")


def read_col6_counts(prefix: Path, rsids: list[str], duplicates: str) -> tuple[pd.DataFrame, dict[str, dict]]:
    """PLINK column-6 allele counts (samples x rsIDs present) for the requested SNPs, NaN for missing, and
    what was done with rsIDs present more than once (real arrays carry duplicate probes).

    The copies of a duplicated rsID are read on the first copy's allele order (a copy with A1/A2 swapped
    counts the other allele: 2 - x). Copies that agree wherever both are called are merged, each filling
    the other's missing calls. Copies that disagree are an error (`duplicates="error"`) or drop the SNP
    from this fileset (`"drop"`); the report gives copies, disagreeing calls and the action per rsID."""
    from pandas_plink import read_plink1_bin

    if duplicates not in DUPLICATE_POLICIES:
        raise G2IError(f"params.yaml: genotypes.duplicate_snps must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    bim, fam = check_fileset(prefix)
    ids = bim["snp"].to_numpy()
    wanted = [r for r in dict.fromkeys(rsids) if r in set(ids)]
    rows = np.flatnonzero(np.isin(ids, wanted))
    genotypes = read_plink1_bin(f"{prefix}.bed", f"{prefix}.bim", f"{prefix}.fam", verbose=False)
    values = genotypes.isel(variant=rows).values if len(rows) else np.empty((len(fam), 0))
    column = {row: i for i, row in enumerate(rows)}
    out, report = {}, {}
    for rsid in wanted:
        copies = np.flatnonzero(ids == rsid)
        merged = values[:, column[copies[0]]].astype(float)
        if len(copies) > 1:
            ref = bim.iloc[copies[0]]
            disagree, both_called, alleles_differ = 0, 0, False
            for k in copies[1:]:
                other, row = values[:, column[k]].astype(float), bim.iloc[k]
                if (row["a1"], row["a2"]) == (ref["a2"], ref["a1"]):
                    other = 2 - other
                elif (row["a1"], row["a2"]) != (ref["a1"], ref["a2"]):
                    alleles_differ = True
                called = ~np.isnan(merged) & ~np.isnan(other)
                both_called += int(called.sum())
                disagree += int((merged[called] != other[called]).sum())
                fill = np.isnan(merged) & ~np.isnan(other)
                merged[fill] = other[fill]
            bad = disagree > 0 or alleles_differ
            report[rsid] = {"copies": int(len(copies)), "calls_compared": both_called, "calls_disagreeing": disagree,
                            "alleles_differ": alleles_differ, "action": ("dropped" if bad else "merged")}
            if bad and duplicates == "error":
                why = "carry different alleles" if alleles_differ else f"disagree on {disagree} of {both_called} calls"
                raise G2IError(f"{prefix}.bim: panel SNP {rsid} appears {len(copies)} times and the copies {why}; "
                               "fix the fileset, or set genotypes.duplicate_snps: drop to leave the SNP out")
            if bad:
                continue
        out[rsid] = merged
    return pd.DataFrame(out, index=pd.Index(fam["iid"], name="PTID"), columns=list(out)), report


def find_t1(ptid: str, patterns: list[str], root: Path) -> str | None:
    """Relative path of the subject's T1: the first pattern with a match (sorted, first file)."""
    for pattern in patterns:
        matches = sorted(glob.glob(str(root / pattern.format(PTID=ptid))))
        if matches:
            return str(Path(matches[0]).relative_to(root)) if Path(matches[0]).is_relative_to(root) else matches[0]
    return None


def build_genotype_table(inputs: GenotypeInputs, ambiguous: str, ambiguous_max_maf: float,
                         max_missing_panel_fraction: float, *, duplicate_snps: str
                         ) -> tuple[pd.DataFrame, pd.DataFrame, dict, pd.DataFrame]:
    """Return (genotype table, subjects table, summary, exclusions)."""
    panel = load_panel()
    phases = list(inputs.raw_filesets)
    per_phase, decisions, e4_from_snp, duplicated = {}, {}, {}, {}
    for phase in phases:
        col6, duplicated[phase] = read_col6_counts(inputs.qc_dir / phase, list(panel["rsid"]) + [E4_SNP.rsid],
                                                   duplicate_snps)
        bim = pd.read_csv(inputs.qc_dir / f"{phase}.bim", sep=r"\s+", header=None,
                          names=["chrom", "snp", "cm", "pos", "a1", "a2"], dtype=str).drop_duplicates("snp")
        counts, phase_decisions = effect_allele_counts(col6, bim, panel, ambiguous, ambiguous_max_maf)
        per_phase[phase], decisions[phase] = counts, {d.rsid: d for d in phase_decisions}
        if E4_SNP.rsid in col6.columns:
            row = bim.set_index("snp").loc[E4_SNP.rsid]
            observed = float(np.nanmean(col6[E4_SNP.rsid]) / 2)
            decision = align(E4_SNP.rsid, row["a1"], row["a2"], E4_SNP.allele_other, E4_SNP.allele_e3, E4_ALLELE_FREQ,
                             observed, ambiguous, ambiguous_max_maf)
            if decision.action != "drop":
                dose = col6[E4_SNP.rsid] if decision.action == "as_is" else 2 - col6[E4_SNP.rsid]
                e4_from_snp[phase] = dose

    # Combine phases by rsID: keep a panel SNP only if every phase carries and aligns it.
    kept, dropped = [], {}
    for rsid in panel["rsid"]:
        problems = []
        for phase in phases:
            decision = decisions[phase].get(rsid)
            if decision is None and duplicated[phase].get(rsid, {}).get("action") == "dropped":
                problems.append(f"{phase}: duplicate probes disagree (genotypes.duplicate_snps: drop)")
            elif decision is None:
                problems.append(f"{phase}: absent after QC")
            elif decision.action == "drop":
                problems.append(f"{phase}: {decision.reason}")
        if problems:
            dropped[rsid] = "; ".join(problems)
        else:
            kept.append(rsid)
    if len(dropped) > max_missing_panel_fraction * len(panel):
        listing = "\n  ".join(f"{r}: {why}" for r, why in dropped.items())
        raise G2IError(f"{len(dropped)} of {len(panel)} panel SNPs are missing or unusable, more than "
                       f"genotypes.max_missing_panel_fraction = {max_missing_panel_fraction}:\n  {listing}")

    # One row per genotyped subject: the last phase listed wins for subjects genotyped twice.
    genotyped, phase_of = [], {}
    for phase in phases:
        frame = per_phase[phase][kept].copy()
        e4 = e4_from_snp.get(phase)
        frame["APOE4_snp"] = (e4.reindex(frame.index) if e4 is not None
                              else pd.Series(np.nan, index=frame.index)).astype(float)
        genotyped.append(frame)
        phase_of.update({ptid: phase for ptid in frame.index})
    genotypes = pd.concat(genotyped)
    multi_phase = sorted(genotypes.index[genotypes.index.duplicated()].unique())
    genotypes = genotypes[~genotypes.index.duplicated(keep="last")]

    baseline = read_baseline(inputs.adnimerge, inputs.diagnosis_map).set_index("PTID")
    apoeres = read_apoeres(inputs.apoeres)
    raw_samples = set().union(*(set(read_fam(f"{p}.fam")["iid"]) for p in inputs.raw_filesets.values()))

    universe = sorted(set(baseline.index) | raw_samples)
    rows, exclusions, sources = [], [], Counter()
    agree = []
    for ptid in universe:
        reason = None
        if ptid not in baseline.index:
            reason = "no baseline row in ADNIMERGE"
        elif pd.isna(baseline.at[ptid, "diagnosis"]):
            reason = "no baseline diagnosis (DX_bl empty)"
        elif ptid not in genotypes.index:
            reason = "removed by sample QC (call rate)" if ptid in raw_samples else "not genotyped"
        if reason is None:
            t1 = find_t1(ptid, inputs.t1_patterns, inputs.root)
            if t1 is None:
                reason = "no T1 image found"
        if reason is None:
            snp_dose = genotypes.at[ptid, "APOE4_snp"]
            clinical = baseline.at[ptid, "APOE4"]
            if pd.isna(clinical):
                clinical = apoeres.get(baseline.at[ptid, "RID"], np.nan)
            if not pd.isna(snp_dose):
                dose, source = snp_dose, "rs429358"
                if not pd.isna(clinical):
                    agree.append(int(snp_dose) == int(clinical))
            elif not pd.isna(clinical):
                dose, source = clinical, "ADNIMERGE/APOERES"
            else:
                reason = "no APOE e4 dose (rs429358 missing and no APOE4/APOERES value)"
        if reason:
            exclusions.append({"PTID": ptid, "reason": reason})
            continue
        sources[source] += 1
        row = {"PTID": ptid, "diagnosis": baseline.at[ptid, "diagnosis"], **genotypes.loc[ptid, kept].to_dict(),
               "APOE4": int(dose)}
        rows.append(row)
        # the subjects table carries what later stages need, not the genotypes
        rows[-1]["_phase"], rows[-1]["_t1"] = phase_of[ptid], t1

    if not rows:
        raise G2IError("no subject has an image, genotypes, a diagnosis and an e4 dose; see the exclusion list")
    table = pd.DataFrame(rows)
    subjects = table[["PTID", "diagnosis", "_phase", "_t1"]].rename(columns={"_phase": "phase", "_t1": "t1_path"})
    table = table.drop(columns=["_phase", "_t1"])
    for rsid in kept:
        table[rsid] = table[rsid].astype("Int64")
    exclusions = pd.DataFrame(exclusions, columns=["PTID", "reason"])
    summary = {
        "n_subjects": int(len(table)),
        "per_class": {k: int(v) for k, v in table["diagnosis"].value_counts().sort_index().items()},
        "panel_snps_total": int(len(panel)),
        "panel_snps_kept": kept,
        "panel_snps_dropped": dropped,
        "alignment": {phase: dict(Counter(_label(d) for d in decisions[phase].values())) for phase in phases},
        "apoe4_source": dict(sources),
        "apoe4_snp_agrees_with_clinical": (round(float(np.mean(agree)), 4) if agree else None),
        "subjects_genotyped_in_several_phases": multi_phase,
        "duplicate_panel_snps": {phase: d for phase, d in duplicated.items() if d},
        "exclusions": dict(Counter(exclusions["reason"])),
    }
    return table, subjects, summary, exclusions


def _label(decision: Alignment) -> str:
    if decision.action == "drop":
        return "dropped"
    return f"{decision.reason}: {'count column 6' if decision.action == 'as_is' else 'count column 5'}"


def write_genotype_outputs(table, subjects, summary, exclusions, table_path: Path, subjects_path: Path,
                           summary_path: Path, exclusions_path: Path) -> None:
    for frame, path in ((table, table_path), (subjects, subjects_path), (exclusions, exclusions_path)):
        with atomic_file(path) as handle:
            frame.to_csv(handle, index=False)
    write_json(summary_path, summary)
