"""Experiments inside the package: a run is a TOML config executed by ``genrec bench CONFIG``.

- :mod:`.config`: the config schema (pydantic) and :func:`.config.load_config`;
- :mod:`.recipe`: dataset + preprocessing + split, the one recipe every run shares;
- :mod:`.tuner`: grid / random / coordinate search on validation cases, through ``set_params``;
- :mod:`.anchors`: published numbers to read results against, with their sources;
- :mod:`.runner`: fit, tune, evaluate every model of a config, with machine facts measured then;
- :mod:`.writer`: the JSON and Markdown results pages (hand notes below a marker are kept).
"""
