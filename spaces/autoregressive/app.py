"""hfgen's Autoregressive Space. Serves $HFGEN_MODEL, else the Hub repo listed in README.md (`models:`)."""

from hfgen.demo import build_demo, launch

demo = build_demo("autoregressive")

if __name__ == "__main__":
    launch(demo)
