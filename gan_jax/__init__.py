"""gan_jax: GAN research in JAX/Flax. See README.md for the map of the package."""
