"""A fitted tree ensemble as one ONNX `TreeEnsemble` node (ai.onnx.ml opset 5), in float64.

treelite reads the scikit-learn estimator (HistGradientBoosting's baseline folded into the
leaves, RandomForest's per-leaf class distributions, its exact thresholds and missing-value
directions); its JSON dump is written here as an ONNX graph that ONNX Runtime evaluates in C++.
Opset 5's TreeEnsemble keeps thresholds and leaf weights in double precision, so the answers
equal scikit-learn's to rounding (skl2onnx's converters write float32 thresholds, which would
flip comparisons for inputs within float32 rounding of a split: the parity check would catch it).
The graph returns the trees' aggregate; the base score (opset 5 has no base values) and the
post-processor (sigmoid or none) are applied by the serving code in float64.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from model.serving_form import POSTPROCESSORS

ML_OPSET = 5
ONNX_OPSET = 21
LEQ = 0  # TreeEnsemble nodes_modes: BRANCH_LEQ (x <= threshold goes to the "true" branch)
AGGREGATE = {False: 1, True: 0}  # average_tree_output -> aggregate_function (SUM, AVERAGE)


class TreeExportError(Exception):
    """The ensemble uses something this exporter does not write (the Pipeline serves instead)."""


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise TreeExportError(what)


def _positive_class_weight(leaf: dict[str, Any], model: dict[str, Any]) -> float:
    value = leaf["leaf_value"]
    if isinstance(value, list):  # per-class distribution (random forest): P(class 1)
        _check(len(value) == model["num_class"][0], "leaf vector length")
        return float(value[-1])
    return float(value)


def from_treelite(model: Any) -> tuple[bytes, str, float]:
    """(serialized ONNX model, post-processor name, base score) for a binary classifier."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dump = json.loads(model.dump_as_json(pretty_print=False))
    _check(dump["task_type"] == "kBinaryClf" or dump["num_class"] == [2], "binary classifier")
    _check(dump["num_target"] == 1, "one target")
    _check(dump["postprocessor"] in POSTPROCESSORS, f"post-processor {dump['postprocessor']}")
    _check(dump.get("sigmoid_alpha", 1.0) == 1.0, "sigmoid alpha 1")
    # one base score, or one per class (random forest): the positive class's is the one used
    _check(len(dump["base_scores"]) in (1, dump["num_class"][0]), "base scores per class")
    columns: dict[str, list[Any]] = {
        key: []
        for key in (
            "roots",
            "feature",
            "split",
            "true_id",
            "true_leaf",
            "false_id",
            "false_leaf",
            "missing_true",
            "weight",
        )
    }
    for tree in dump["trees"]:
        _check(not tree.get("has_categorical_split", False), "numerical splits only")
        nodes = {node["node_id"]: node for node in tree["nodes"]}
        leaves = sorted(i for i, node in nodes.items() if "leaf_value" in node)
        tests = sorted(i for i, node in nodes.items() if "leaf_value" not in node)
        leaf_index = {i: len(columns["weight"]) + k for k, i in enumerate(leaves)}
        columns["weight"] += [_positive_class_weight(nodes[i], dump) for i in leaves]
        if not tests:  # a single-leaf tree: one split whose both branches reach that leaf
            columns["roots"].append(len(columns["feature"]))
            columns["feature"].append(0)
            columns["split"].append(0.0)
            for side in ("true", "false"):
                columns[f"{side}_id"].append(leaf_index[leaves[0]])
                columns[f"{side}_leaf"].append(1)
            columns["missing_true"].append(0)
            continue
        test_index = {i: len(columns["feature"]) + k for k, i in enumerate(tests)}
        columns["roots"].append(test_index[tree["nodes"][0]["node_id"]])
        for i in tests:
            node = nodes[i]
            _check(node["node_type"] == "numerical_test_node", f"node type {node['node_type']}")
            _check(node["comparison_op"] == "<=", f"comparison {node['comparison_op']}")
            columns["feature"].append(int(node["split_feature_id"]))
            columns["split"].append(float(node["threshold"]))
            for side, child in (("true", node["left_child"]), ("false", node["right_child"])):
                is_leaf = child in leaf_index
                columns[f"{side}_id"].append(leaf_index[child] if is_leaf else test_index[child])
                columns[f"{side}_leaf"].append(int(is_leaf))
            columns["missing_true"].append(int(bool(node["default_left"])))
    ensemble = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        aggregate_function=AGGREGATE[bool(dump["average_tree_output"])],
        n_targets=1,
        post_transform=0,  # NONE: the sigmoid runs in float64 outside
        tree_roots=columns["roots"],
        nodes_featureids=columns["feature"],
        nodes_splits=numpy_helper.from_array(np.asarray(columns["split"], dtype=np.float64)),
        nodes_modes=numpy_helper.from_array(np.full(len(columns["feature"]), LEQ, np.uint8)),
        nodes_truenodeids=columns["true_id"],
        nodes_trueleafs=columns["true_leaf"],
        nodes_falsenodeids=columns["false_id"],
        nodes_falseleafs=columns["false_leaf"],
        nodes_missing_value_tracks_true=columns["missing_true"],
        leaf_targetids=[0] * len(columns["weight"]),
        leaf_weights=numpy_helper.from_array(np.asarray(columns["weight"], dtype=np.float64)),
    )
    graph = helper.make_graph(
        [ensemble],
        "faultline_trees",
        [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, dump["num_feature"]])],
        [helper.make_tensor_value_info("Y", TensorProto.DOUBLE, [None, 1])],
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", ONNX_OPSET),
            helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        producer_name="faultline",
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    base_score = float(dump["base_scores"][-1])
    return onnx_model.SerializeToString(), str(dump["postprocessor"]), base_score
