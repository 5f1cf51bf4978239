"""`hfgen presets`: every family's named published architectures - what `hfgen train <family> --preset NAME`
builds - with the resolution and channels each was published for, its parameter count and its source."""

from __future__ import annotations

from ..families import family_names, preset_table


def run(argv: list[str]) -> None:
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: hfgen presets\n\nThe published architectures of {', '.join(family_names())}: name, resolution and "
              "channels, parameters, source.")
        return
    if argv:
        raise ValueError(f"`hfgen presets` takes no options, got {' '.join(argv)!r}: use `hfgen train <family> --preset NAME`.")
    print(preset_table())
