"""QuantConfig validation: every bad setting fails at construction with a message naming it."""
from __future__ import annotations

import pytest

from onnxopt.errors import OnnxoptError
from onnxopt.quantization import QuantConfig, QuantConfigError, quantize

from qmodels import cnn


def test_defaults_are_static_minmax_uint8_per_channel():
    config = QuantConfig()
    assert (config.mode, config.method, config.activation_type, config.per_channel) == ("static", "minmax", "uint8", True)
    assert config.allows_op("Conv")


@pytest.mark.parametrize("options,message", [
    ({"mode": "qat"}, "mode must be one of static, dynamic"),
    ({"method": "kl"}, "method must be one of minmax, entropy, percentile, mse"),
    ({"activation_type": "int16"}, "activation_type must be one of uint8, int8"),
    ({"optimize_for": "size"}, "optimize_for must be one of None, latency"),
    ({"provider": "tpu"}, "provider must be one of"),
    ({"samples": 0}, "samples must be a positive integer"),
    ({"holdout": -1}, "holdout must be 0 or more"),
    ({"threads": -2}, "threads must be 0"),
    ({"target_sqnr": -3.0}, "target_sqnr must be a number of dB"),
    ({"target_sqnr": float("nan")}, "target_sqnr must be a number of dB"),
    ({"target_sqnr": 30.0, "holdout": 0}, "needs held-out samples"),
    ({"include_ops": ["Conv"], "exclude_ops": ["Conv"]}, "both included and excluded"),
    ({"include_ops": []}, "include_ops is empty"),
    ({"exclude_nodes": ["a", " "]}, "exclude_nodes has an empty name"),
    ({"mode": "dynamic", "activation_type": "int8"}, "uint8 asymmetric only"),
    ({"mode": "dynamic", "method": "entropy"}, "dynamic mode needs no calibration"),
])
def test_invalid_settings_raise_a_clear_error(options, message):
    with pytest.raises(QuantConfigError, match=message):
        QuantConfig(**options)


def test_config_errors_are_user_errors_and_unknown_options_are_named():
    assert issubclass(QuantConfigError, OnnxoptError)
    with pytest.raises(QuantConfigError, match=r"unknown quantization option\(s\) \['calibration_method'\]"):
        QuantConfig.from_options(calibration_method="minmax")


def test_names_from_comma_separated_strings_and_replace_revalidates():
    config = QuantConfig(exclude_ops="Add, Mul", include_ops=("Conv", "Add2"))
    assert config.exclude_ops == ("Add", "Mul") and not config.allows_op("Add") and not config.allows_op("Gemm")
    with pytest.raises(QuantConfigError):
        config.replace(method="bogus")


def test_static_mode_without_data_is_a_user_error():
    with pytest.raises(OnnxoptError, match="static quantization needs calibration data"):
        quantize(cnn(), None, latency_check=False)


def test_held_out_samples_default_to_more_when_a_target_sqnr_is_searched():
    assert QuantConfig().held_out_samples == 8
    assert QuantConfig(target_sqnr=30.0).held_out_samples == 64
    assert QuantConfig(target_sqnr=30.0, holdout=3).held_out_samples == 3
    assert QuantConfig().replace(target_sqnr=30.0).held_out_samples == 64  # the default follows the target
    assert QuantConfig(holdout=5).replace(target_sqnr=30.0).held_out_samples == 5
