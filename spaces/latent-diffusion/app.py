"""hfgen's latent-diffusion Space. Serves $HFGEN_MODEL, else the Hub repo listed in README.md (`models:`)."""

from hfgen.demo import build_demo, launch, space_model

demo = build_demo("latent-diffusion", space_model(__file__))

if __name__ == "__main__":
    launch(demo)
