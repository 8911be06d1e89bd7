"""g2i sample: the generated sets (test subjects, classifier augmentation, APOE sweep) of one model."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_common_arguments, model_params

NAME = "sample"
HELP = "generate the evaluation sets of one trained model (diffusion variant or GAN)"
DESCRIPTION = ("Load models/<variant>/ and generate: several images per test subject (its genotype and "
               "diagnosis), per-class images that fill the classifier's training set to sample.per_class, and "
               "the APOE e4 dose sweep on fixed noise. A model in sample.guidance_models first gets the "
               "classifier-free guidance sweep on the validation subjects: the diagnosis scale w whose generated "
               "label effects are closest to the real training slices' (or, without a diagnosis input, the lowest "
               "FD_cnn), then, for models that see both conditions, the genotype scale w_g with the lowest FD_cnn "
               "at that w (sample.genotype_guidance_sweep); all its sets are generated at the chosen scales. Writes data/generated/<variant>/{test,augment,counterfactual[,guidance]}.npz "
               "and logs counts to MLflow.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--variant", required=True, help="a trained model under --models (ldm, g2i, g2i_l_noatt, "
                                                         "g2i_l_att, or a GAN: cgan, stackgan, attngan)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="folder holding <variant>/")
    parser.add_argument("--out", type=Path, default=Path("data/generated"), help="sets go to <out>/<variant>/")


def load_variant_uses(model_dir: Path) -> dict:
    """Which conditions a saved diffusion model sees (its denoiser config), without loading the weights."""
    import json

    from ..models.denoiser import USES_GENOTYPE, USES_LABEL

    variant = json.loads((Path(model_dir) / "unet" / "config.json").read_text())["variant"]
    return {"label": USES_LABEL[variant], "genotype": USES_GENOTYPE[variant]}


def run(args: argparse.Namespace) -> None:
    import time

    import mlflow

    from ..config import repo_root
    from ..data.dataset import ProcessedPaths, SliceGenotypeDataset
    import numpy as np

    from ..errors import G2IError
    from ..evaluation.classifier import ClassifierConfig, extract_features, feature_cnn, scarcity_subsamples
    from ..evaluation.truth import label_effect_error
    from ..imaging.slice_morphometry import lateral_ventricle_area
    from ..generation.sets import SampleConfig, choose_guidance, guidance_set, write_sets
    from ..evaluation.image_metrics import frechet_distance
    from ..generation.loader import guidance_settings, guided_generators, load_generator
    from ..io.atomic import atomic_dir, write_json
    from ..tracking import flatten, log_new_params, run_tags, start_run

    params = model_params(args)
    root = repo_root()
    cfg = SampleConfig.from_params(params["sample"])
    paths = ProcessedPaths()
    paths.check()
    train, test = SliceGenotypeDataset(paths, "train"), SliceGenotypeDataset(paths, "test")
    generate, settings = load_generator(args.models / args.variant, params)
    # enough augmentation images to fill the smallest real subsample of Table 2's scarcity curve
    keep = scarcity_subsamples(train.index["PTID"].to_numpy().astype(str), train.labels, params["classify"])
    min_real = np.bincount(train.labels[keep[min(keep)]], minlength=3)
    swept = args.variant in cfg.guidance_models and bool(cfg.guidance_sweep)
    if swept and settings.get("sampler") == "gan":
        raise G2IError(f"sample.guidance_models: {args.variant} is a GAN; classifier-free guidance needs a "
                       "diffusion model")
    with start_run(root, f"sample-{args.variant}", run_tags(root, params["profile"], variant=args.variant,
                                                                stage="sample")):
        log_new_params({"variant": args.variant, "profile": params["profile"],
                        **dict(flatten({"sample": params["sample"], "generation": settings}))})
        started = time.perf_counter()
        guidance = None
        if swept:   # sweep w on the validation subjects first; every other set is generated at the chosen scales
            generate_at = guided_generators(args.models / args.variant, params)
            pipe_uses = load_variant_uses(args.models / args.variant)
            val = SliceGenotypeDataset(paths, "val")
            print(f"{args.variant}: guidance sweep w = {list(cfg.guidance_sweep)} on the validation subjects ...")
            guidance = guidance_set(generate_at, train, val, cfg, [(w, w) for w in cfg.guidance_sweep])
            cnn, x_train, f_train = feature_cnn(train, ClassifierConfig.from_params(params["classify"]["classifier"]),
                                                int(params["evaluate"]["seed"]))
            fd = lambda x: frechet_distance(extract_features(cnn, x), f_train)   # noqa: E731
            label_error = (label_effect_error(lateral_ventricle_area(x_train), train.labels)
                           if pipe_uses["label"] else None)
            chosen = choose_guidance(guidance, fd, label_error)
            if pipe_uses["label"] and pipe_uses["genotype"] and cfg.genotype_guidance_sweep:
                print(f"{args.variant}: w_dx = {chosen['w']:g}; genotype guidance sweep w_g = "
                      f"{list(cfg.genotype_guidance_sweep)} ...")
                guidance = guidance_set(generate_at, train, val, cfg,
                                        [(chosen["w"], g) for g in cfg.genotype_guidance_sweep], sets=guidance)
                chosen = choose_guidance(guidance, fd, label_error)
            w, w_g = chosen["w"], chosen["w_g"]
            guidance.update(chosen=np.float64(w), chosen_genotype=np.float64(w_g), fd_cnn=chosen["fd_cnn"],
                            label_error=chosen["label_error"])
            generate, settings = generate_at(w, w_g), {**settings, **guidance_settings(w, w_g)}
            mlflow.log_metrics({"guidance_chosen": w, "genotype_guidance_chosen": w_g} |
                               {f"guidance_fd_cnn_w{a:g}_g{b:g}": f
                                for a, b, f in zip(guidance["w"], guidance["w_g"], chosen["fd_cnn"])})
            for a, b, f, e in zip(guidance["w"], guidance["w_g"], chosen["fd_cnn"], chosen["label_error"]):
                print(f"  w_dx {a:g}, w_g {b:g}: FD_cnn {f:.3f}, label-effect error {e:.3f}")
            print(f"{args.variant}: chosen w_dx = {w:g}, w_g = {w_g:g}")
        with atomic_dir(args.out / args.variant, overwrite=True) as tmp:
            counts = write_sets(generate, train, test, cfg, tmp, guidance=guidance, min_real=min_real)
            seconds = time.perf_counter() - started
            # no timings in the output: the same settings must give the same bytes (DVC hashes this folder)
            write_json(tmp / "summary.json", {"variant": args.variant, "images": counts, "generation": settings})
        mlflow.log_metrics({f"images_{k}": v for k, v in counts.items()} |
                           {"images_per_second": sum(counts.values()) / seconds, "seconds": seconds})
    print(f"{args.variant}: {sum(counts.values())} images in {seconds:.0f} s -> {args.out / args.variant}")

