"""The `accelerate config` files the training guide (docs/training.md) gives for DDP, FSDP and DeepSpeed load with accelerate's own parser and
say what it says. (FSDP and DeepSpeed cannot run on CPU processes: accelerate enables them only on
accelerators, so these are checked, not run.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

CONFIGS = Path(__file__).resolve().parents[1] / "scripts" / "accelerate_configs"


@pytest.mark.parametrize(
    ("name", "distributed_type"), [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed_zero2", "DEEPSPEED")]
)
def test_each_config_loads_with_accelerates_parser(name, distributed_type):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert isinstance(config, ClusterConfig) and config.distributed_type.value == distributed_type
    assert config.mixed_precision == "bf16" and not config.use_cpu
    if name == "fsdp":  # get_state_dict gathers the full weights only under a FULL_STATE_DICT
        assert config.fsdp_config["fsdp_version"] == 2 and config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    if name == "deepspeed_zero2":  # stage 2 keeps whole parameters on every GPU: the EMA and saving see them as they are
        assert config.deepspeed_config["zero_stage"] == 2


def test_the_training_guide_names_every_config():
    readme = (CONFIGS.parents[1] / "docs" / "training.md").read_text()
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == ["ddp.yaml", "deepspeed_zero2.yaml", "fsdp.yaml"]
    assert all(f"`{p.name}`" in readme for p in CONFIGS.glob("*.yaml"))
