"""Generation: every trained generator behind one door (loading, sampling, generated sets, preview grids).

- `diffusion`: G2IPipeline (the four diffusion variants; diffusers DiffusionPipeline) and `load_variant`;
- `sampler`: reverse diffusion in latent space (DDPM / DDIM / DPM++, compositional guidance), decoding;
- `gan`: GANPipeline (CGAN, StackGAN, AttnGAN) with the same from_pretrained / save_pretrained / __call__;
- `loader`: `load_generator(model_dir, params)` dispatches on the saved folder and returns one
  `generate(genotypes, labels, seed)`;
- `sets`: the generated image sets of the `sample` stage (test, augment, counterfactual, guidance sweep);
- `preview`: the sample grids drawn while and after training (one slice per diagnosis class).

Training (g2i.training) builds and saves these; evaluation reads the sets. Nothing here trains.
"""
