"""`hfgen train <family> [options]`: train one family with the shared loop, then write its model card and, with
`--push_to_hub`, push the folder."""

from __future__ import annotations

from pathlib import Path

from ..families import family_names
from ..training.launch import parse_run, train_run


def run(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise ValueError(f"`hfgen train` needs a family first: hfgen train <{'|'.join(family_names())}> [options].")
    family, options = argv[0], argv[1:]
    training, data, model = parse_run(family, options)
    if training.push_to_hub:  # fail now, not after hours of training
        from ..hub.push import require_token

        require_token()
    output = train_run(family, training, data, model, options)
    from accelerate import PartialState

    if PartialState().is_main_process:  # the card and the push: once, after the last step
        from ..hub.cards import write_card
        from ..hub.push import PushArguments, push_folder

        write_card(Path(training.output_dir), training.hub_model_id)
        if training.push_to_hub:
            print(f"pushed to {push_folder(PushArguments(training.output_dir, training.hub_model_id))}")
        print(f"trained {output.global_step} steps in {output.train_seconds:.1f} s")
