"""Random nestings of model configs: each code-carrying entry is refused at its path, the rest pass.

The configs are built as Keras writes them (legacy Keras 2, tf_keras and Keras 3 styles): models
holding layers, wrappers holding a layer, RNNs holding a cell, stacked cells, cell wrappers with or
without a ``residual_fn``. Each leaf is a built-in or carries code in one of the ways a file can;
the test knows where each code-carrying entry is, and expects exactly those paths, in order.
"""

from __future__ import annotations

import codecs
import itertools
import json
import marshal
import zipfile

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesmith.core.errors import EdgesmithError
from edgesmith.tfkeras.model_safety import check_model_file, inspect_model_file

# what tf_keras' func_dump writes for a lambda (never run here: the point is that nobody runs it)
_CODE = marshal.dumps(compile("lambda i, o: open('MARKER', 'w')", "<evil>", "eval").co_consts[0])
BYTECODE = codecs.encode(_CODE, "base64").decode("ascii")

SAFE_LEAVES = ("dense", "conv", "bn", "op", "base64_name", "dropout_cell")
CODE_LEAVES = (
    "lambda",
    "custom_class",
    "module_os",
    "registered",
    "activation_name",
    "activation_function",
    "tf_io_op",
    "hidden_bytecode",
    "initializer",
    "dropout_fn",
)
STYLES = ("legacy", "tf_keras", "keras3")


def obj(style, class_name, config, module="keras.layers", registered=None):
    if style == "legacy":
        return {"class_name": class_name, "config": config}
    return {
        "module": module,
        "class_name": class_name,
        "config": config,
        "registered_name": registered,
    }


def activation(style, name):
    if style == "keras3":
        return obj(style, "function", name, "keras.activations", name)
    return name


def leaf(kind, style, name, path):
    """One leaf: its config, and the paths of its code-carrying entries."""
    if kind == "dense":
        init = obj(style, "GlorotUniform", {"seed": None}, "keras.initializers")
        reg = obj(style, "L2", {"l2": 0.01}, "keras.regularizers")
        dtype = (
            obj(style, "DTypePolicy", {"name": "float32"}, "keras")
            if style == "keras3"
            else "float32"
        )
        config = {"name": name, "units": 4, "activation": "relu", "kernel_initializer": init}
        return obj(style, "Dense", {**config, "kernel_regularizer": reg, "dtype": dtype}), []
    if kind == "conv":
        config = {"name": name, "filters": 2, "activation": activation(style, "gelu")}
        return obj(style, "Conv2D", {**config, "kernel_constraint": "max_norm"}), []
    if kind == "bn":
        return obj(style, "BatchNormalization", {"name": name, "momentum": 0.9}), []
    if kind == "op":
        if style == "keras3":  # x + y in a Keras 3 functional model
            return obj(style, "Add", {"name": name}, "keras.src.ops.numpy", "Add"), []
        return obj(style, "TFOpLambda", {"name": name, "function": "math.add"}), []
    if kind == "base64_name":  # looks like base64, is not bytecode
        return obj(style, "Dropout", {"name": "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4", "rate": 0.1}), []
    if kind == "dropout_cell":
        cell = obj(style, "SimpleRNNCell", {"name": name, "units": 3})
        return obj(style, "DropoutWrapper", {"name": f"{name}w", "cell": cell}), []
    if kind == "lambda":
        if style == "keras3":
            function = {"class_name": "__lambda__", "config": {"value": [BYTECODE, None, None]}}
            return obj(style, "Lambda", {"name": name, "function": function}), [path]
        config = {"name": name, "function": [BYTECODE, None, None], "function_type": "lambda"}
        return obj(style, "Lambda", {**config, "module": "__main__"}), [path]
    if kind == "custom_class":
        return obj(style, "MyBlock", {"name": name}, "my_package.layers"), [path]
    if kind == "module_os":
        return {"module": "os", "class_name": "Dense", "config": {"name": name}}, [path]
    if kind == "registered":
        return {**obj("keras3", "Dense", {"name": name}), "registered_name": "pkg>Evil"}, [path]
    if kind == "activation_name":
        return obj(style, "Dense", {"name": name, "activation": "my_act"}), [f"{path} > activation"]
    if kind == "activation_function":
        fn = {"module": "__main__", "class_name": "function", "config": "evil"}
        return obj(style, "Dense", {"name": name, "activation": fn}), [f"{path} > activation"]
    if kind == "tf_io_op":
        return obj(style, "TFOpLambda", {"name": name, "function": "io.write_file"}), [path]
    if kind == "hidden_bytecode":
        config = {"name": name, "units": 2, "note": ["x", BYTECODE]}
        return obj(style, "Dense", config), [f"{path} > note[1]"]
    if kind == "initializer":
        init = obj(style, "EvilInit", {}, "keras.initializers")
        return obj(style, "Dense", {"name": name, "kernel_initializer": init}), [
            f"{path} > kernel_initializer"
        ]
    assert kind == "dropout_fn"
    cell = obj(style, "GRUCell", {"name": name, "units": 3})
    config = {"name": f"{name}w", "cell": cell, "dropout_fn": "evil", "dropout_fn_type": "function"}
    return obj(style, "DropoutWrapper", {**config, "dropout_fn_module": "evil"}), [
        f"{path} > dropout_fn"
    ]


def render_all(trees, style, path, names):
    """The configs of a list of ``trees`` at ``path[0]``, ``path[1]``..., and all their paths."""
    configs, paths = [], []
    for index, child in enumerate(trees):
        config, found = render(child, style, f"{path}[{index}]", names)
        configs.append(config)
        paths += found
    return configs, paths


def render(tree, style, path, names):
    """The config of ``tree`` (see ``trees``) at ``path``, and its code-carrying entries' paths."""
    name = f"n{next(names)}"
    if tree[0] == "leaf":
        return leaf(tree[1], style, name, path)
    if tree[0] == "model":
        layers, paths = render_all(tree[2], style, f"{path} > layers", names)
        return obj(style, tree[1], {"name": name, "layers": layers}, "keras"), paths
    if tree[0] == "wrap":  # TimeDistributed, Bidirectional: the wrapped layer under "layer"
        config, paths = render(tree[2], style, f"{path} > layer", names)
        return obj(style, tree[1], {"name": name, "layer": config}), paths
    if tree[0] == "rnn":
        config, paths = render(tree[1], style, f"{path} > cell", names)
        return obj(style, "RNN", {"name": name, "cell": config, "unroll": False}), paths
    if tree[0] == "stack":
        cells, paths = render_all(tree[1], style, f"{path} > cells", names)
        return obj(style, "StackedRNNCells", {"name": name, "cells": cells}), paths
    assert tree[0] == "residual"  # tf_keras' ResidualWrapper, with or without a residual_fn
    config, paths = render(tree[1], style, f"{path} > cell", names)
    fields = {"name": name, "cell": config}
    if tree[2] == "lambda":
        fields |= {"residual_fn": [BYTECODE, None, None], "residual_fn_type": "lambda"}
    elif tree[2] == "function":
        fields |= {"residual_fn": "system", "residual_fn_type": "function"}
    if tree[2] is not None:
        fields["residual_fn_module"] = "__main__"
        paths = [*paths, f"{path} > residual_fn"]
    module = "tf_keras.src.layers.rnn.cell_wrappers" if style != "keras3" else "keras.layers"
    return obj(style, "ResidualWrapper", fields, module, "ResidualWrapper"), paths


def trees(code: bool):
    kinds = SAFE_LEAVES + CODE_LEAVES if code else SAFE_LEAVES
    leaves = st.tuples(st.just("leaf"), st.sampled_from(kinds))

    def extend(children):
        return st.one_of(
            st.tuples(
                st.just("model"),
                st.sampled_from(["Functional", "Sequential"]),
                st.lists(children, min_size=1, max_size=3),
            ),
            st.tuples(
                st.just("wrap"), st.sampled_from(["TimeDistributed", "Bidirectional"]), children
            ),
            st.tuples(st.just("rnn"), children),
            st.tuples(st.just("stack"), st.lists(children, min_size=1, max_size=3)),
            st.tuples(
                st.just("residual"),
                children,
                st.sampled_from([None, "lambda", "function"] if code else [None]),
            ),
        )

    return st.tuples(
        st.just("model"),
        st.just("Functional"),
        st.lists(st.recursive(leaves, extend, max_leaves=8), min_size=1, max_size=3),
    )


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def write(path, config, style, as_zip):
    version = "3.10.0" if style == "keras3" else "2.21.0"
    if as_zip:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("metadata.json", json.dumps({"keras_version": version}))
    else:  # HDF5, whatever the suffix says
        with h5py.File(path, "w") as handle:
            handle.attrs["model_config"] = json.dumps(config)
            handle.attrs["keras_version"] = version
    return path


@pytest.mark.parametrize("code", [True, False], ids=["with-code", "code-free"])
def test_every_code_carrying_entry_is_refused_at_its_path(tmp_path, code):
    seen = {"refused": 0, "accepted": 0}

    @SETTINGS
    @given(trees(code), st.sampled_from(STYLES), st.booleans())
    def check(tree, style, as_zip):
        config, expected = render(tree, style, "model", itertools.count())
        path = write(tmp_path / ("m.keras" if as_zip else "m.h5"), config, style, as_zip)
        reasons = inspect_model_file(path).reasons
        assert [reason.split(": ", 1)[0] for reason in reasons] == expected, reasons
        if expected:
            seen["refused"] += 1
            with pytest.raises(EdgesmithError) as error:
                check_model_file(path)
            assert str(error.value).startswith(f"{path}: {expected[0]}: ")
            assert "--trust-model" in str(error.value)
            assert check_model_file(path, trust_model=True).reasons == reasons
        else:
            seen["accepted"] += 1
            assert check_model_file(path).reasons == ()

    check()
    if code:  # the strategy really produced both kinds
        assert seen["refused"] and seen["accepted"], seen
    else:
        assert seen["accepted"] and not seen["refused"], seen
