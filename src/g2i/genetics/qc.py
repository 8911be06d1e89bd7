"""Genotype quality control with PLINK 2, one filter at a time so every filter's effect is counted.

The paper's filters (section 4.1): missing genotype rate > 5 % (per sample, --mind, and per SNP,
--geno), minor allele frequency < 1 % (--maf), Hardy-Weinberg exact test p < 1e-5 (--hwe). Applied
per phase, since ADNI-1 and ADNI-GO/2 used different arrays, in that order.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import G2IError
from .plink import check_fileset, read_bim, read_fam

FILTER_ORDER = ("mind", "geno", "maf", "hwe")
FILTER_LABELS = {
    "mind": "sample missing rate",
    "geno": "SNP missing rate",
    "maf": "minor allele frequency",
    "hwe": "Hardy-Weinberg exact p",
}


@dataclass(frozen=True)
class QcThresholds:
    mind: float = 0.05
    geno: float = 0.05
    maf: float = 0.01
    hwe: float = 1e-5

    @classmethod
    def from_params(cls, section: dict) -> "QcThresholds":
        try:
            values = {name: float(section[name]) for name in FILTER_ORDER}
        except KeyError as exc:
            raise G2IError(f"params.yaml: genotype_qc.{exc.args[0]} is missing") from exc
        for name, value in values.items():
            if not 0 <= value <= 1:
                raise G2IError(f"params.yaml: genotype_qc.{name} must be within [0, 1], got {value}")
        return cls(**values)


def plink2_executable() -> str:
    """Path of plink2, or a plain instruction for installing it."""
    path = shutil.which("plink2")
    if path is None:
        raise G2IError(
            "plink2 not found on PATH. Install PLINK 2: 'sudo apt-get install plink2' (Debian/Ubuntu), "
            "'conda install -c bioconda plink2', or run 'make setup' as root."
        )
    return path


def _plink2(args: list[str], log_hint: Path) -> None:
    result = subprocess.run([plink2_executable(), *args], capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
        raise G2IError(f"plink2 failed on {log_hint} (exit {result.returncode}):\n{tail}")


def variants(bim) -> Counter:
    """A .bim's variants as a multiset of (chrom, ID, position, A1, A2): IDs alone are not unique on real
    arrays (several `.` IDs, duplicate probes), so counts and removed lists go by the whole record."""
    return Counter(zip(bim["chrom"], bim["snp"], bim["pos"].astype(str), bim["a1"], bim["a2"]))


def variant_name(key: tuple, ids: Counter) -> str:
    """The rsID when it names one variant, else ID@chrom:pos:A1:A2."""
    chrom, snp, pos, a1, a2 = key
    return snp if snp != "." and ids[snp] == 1 else f"{snp}@{chrom}:{pos}:{a1}:{a2}"


def qc_fileset(prefix: Path, out_prefix: Path, thresholds: QcThresholds) -> dict:
    """QC one fileset into out_prefix.{bed,bim,fam}; return counts and removed IDs per filter."""
    bim, fam = check_fileset(prefix)
    report = {"input": {"snps": len(bim), "samples": len(fam)}, "filters": [], "removed": {}}
    ids = Counter(bim["snp"])
    with tempfile.TemporaryDirectory(prefix="g2i-qc-") as scratch:
        current = prefix
        snps, samples = variants(bim), set(fam["iid"])
        for step, name in enumerate(FILTER_ORDER):
            nxt = Path(scratch) / f"step{step}_{name}"
            _plink2(["--bfile", str(current), f"--{name}", repr(getattr(thresholds, name)), "--make-bed",
                     "--out", str(nxt), "--silent"], prefix)
            kept_snps, kept_samples = variants(read_bim(f"{nxt}.bim")), set(read_fam(f"{nxt}.fam")["iid"])
            removed = (sorted(samples - kept_samples) if name == "mind" else
                       sorted(variant_name(k, ids) for k in (snps - kept_snps).elements()))
            report["filters"].append({
                "filter": name,
                "label": FILTER_LABELS[name],
                "threshold": getattr(thresholds, name),
                "snps_before": snps.total(), "snps_after": kept_snps.total(),
                "samples_before": len(samples), "samples_after": len(kept_samples),
            })
            report["removed"][name] = removed
            snps, samples, current = kept_snps, kept_samples, nxt
        for ext in (".bed", ".bim", ".fam"):
            shutil.copyfile(f"{current}{ext}", f"{out_prefix}{ext}")
    report["output"] = {"snps": snps.total(), "samples": len(samples)}
    return report


def run_genotype_qc(filesets: dict[str, Path], out_dir: Path, report_path: Path, removed_path: Path,
                    thresholds: QcThresholds) -> dict:
    """QC every phase's fileset into out_dir/<phase>.*, then report counts and the phases' shared rsIDs."""
    from ..io.atomic import atomic_dir, atomic_file, write_json

    if not filesets:
        raise G2IError("params.yaml: data.genotype_filesets lists no PLINK fileset")
    plink2_executable()  # fail before any work when PLINK 2 is missing
    phases = {}
    with atomic_dir(out_dir, overwrite=True) as tmp:
        for phase, prefix in filesets.items():
            phases[phase] = qc_fileset(Path(prefix), tmp / phase, thresholds)
        shared = set.intersection(*(set(read_bim(tmp / f"{phase}.bim")["snp"]) for phase in filesets)) - {"."}
    report = {
        "thresholds": {name: getattr(thresholds, name) for name in FILTER_ORDER},
        "phases": {phase: {k: v for k, v in r.items() if k != "removed"} for phase, r in phases.items()},
        "snps_in_all_phases_after_qc": len(shared),
    }
    rows = ["phase\tfilter\tkind\tid"]
    for phase, r in phases.items():
        for name, ids in r["removed"].items():
            kind = "sample" if name == "mind" else "snp"
            rows.extend(f"{phase}\t{name}\t{kind}\t{i}" for i in ids)
    with atomic_file(removed_path) as handle:
        handle.write("\n".join(rows) + "\n")
    write_json(report_path, report)
    return report


def format_qc_table(report: dict) -> str:
    """The QC report as a Markdown table, like the paper's '620,901 -> 553,789'."""
    lines = ["| phase | step | threshold | SNPs | samples |", "|---|---|---|---|---|"]
    for phase, r in report["phases"].items():
        lines.append(f"| {phase} | input | | {r['input']['snps']:,} | {r['input']['samples']:,} |")
        for f in r["filters"]:
            lines.append(f"| {phase} | {f['label']} (--{f['filter']}) | {f['threshold']:g} | "
                         f"{f['snps_before']:,} -> {f['snps_after']:,} | {f['samples_before']:,} -> {f['samples_after']:,} |")
    lines.append(f"\nSNPs present in every phase after QC: {report['snps_in_all_phases_after_qc']:,}")
    return "\n".join(lines) + "\n"
