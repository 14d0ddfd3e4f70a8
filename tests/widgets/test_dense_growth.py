import math

import pytest

from cnnbook.models.densenet import densenet_d2l
from cnnbook.profiling import count_params
from cnnbook.widgets.dense_growth import DenseGrowthExplorer, dense_layout


def _arithmetic(c0, config, k, theta):
    """Channels after each block and transition: c0 + L k, then floor(theta m)."""
    blocks, trans, c = [], [], c0
    for i, n in enumerate(config):
        c += n * k
        blocks.append(c)
        if i < len(config) - 1:
            c = math.floor(theta * c)
            trans.append(c)
    return blocks, trans


@pytest.fixture
def explorer():
    return DenseGrowthExplorer(growth_rate=12, layers=4, blocks=4, compression=0.5)


@pytest.mark.parametrize("config,k,c0,theta,bottleneck", [((4, 4, 4, 4), 32, 64, 0.5, None),
                                                          ((2, 3), 7, 16, 0.7, None),
                                                          ((6, 12, 24, 16), 32, 64, 0.5, 4)])
def test_layout_is_the_course_densenet(config, k, c0, theta, bottleneck):
    out = dense_layout(config, k, c0, theta, bottleneck)
    model = densenet_d2l(growth_rate=k, init_channels=c0, block_config=config,
                         compression=theta, bottleneck=bottleneck, small_input=True)
    assert out["params"] == count_params(model) == out["table"].params.sum()
    assert (out["block_outputs"], out["transition_outputs"]) == _arithmetic(c0, config, k, theta)
    dense = out["table"][out["table"].kind == "dense"]
    first = dense[dense.block == 1]
    assert list(first.reads) == [c0 + i * k for i in range(config[0])]
    assert out["connections"][0] == config[0] * (config[0] + 1) // 2 + config[0] + 1
    assert out["connections"][-1] == config[-1] * (config[-1] + 1) // 2  # no transition after


def test_first_render(explorer):
    s = explorer.state
    assert explorer.renders == 1 and s["error"] is None
    # the chapter's cpu DenseNet: k 12, stem 24, four blocks of four, theta 0.5
    model = densenet_d2l(growth_rate=12, init_channels=24, block_config=(4, 4, 4, 4),
                         small_input=True)
    assert s["params"] == s["params_by_layer"] == count_params(model)
    assert s["block_outputs"] == [72, 84, 90, 93] and s["transition_outputs"] == [36, 42, 45]
    assert s["channels_before_fc"] == 93 and s["connections"] == [15, 15, 15, 10]
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_growth_and_compression_change_the_network(explorer):
    c = explorer.controls
    c["growth_rate"].value = 24
    assert explorer.state["block_outputs"][0] == 24 + 4 * 24
    c["compression"].value = 1.0
    assert explorer.state["transition_outputs"][0] == explorer.state["block_outputs"][0]
    params = explorer.state["params"]
    c["bottleneck"].value = True
    assert explorer.state["params"] != params and explorer.state["bottleneck"]
    assert explorer.renders == 4


def test_parameters_grow_quadratically_with_the_layers(explorer):
    """Layer l reads c0 + (l-1) k channels, so a block's parameters grow as L^2."""
    c = explorer.controls
    c["blocks"].value = 1
    sizes = {}
    for layers in (4, 8, 16):
        c["layers"].value = layers
        sizes[layers] = explorer.state["params"]
    assert sizes[16] - sizes[8] > 2 * (sizes[8] - sizes[4])


def test_fewer_blocks_pull_the_drawn_block_back(explorer):
    c = explorer.controls
    c["block"].value = 4
    assert explorer.state["block"] == 4
    c["blocks"].value = 2
    assert c["block"].max == 2 and c["block"].value == 2 and explorer.state["block"] == 2
    assert explorer.state["error"] is None and len(explorer.state["block_outputs"]) == 2


@pytest.mark.parametrize("args,message", [(((), 12), "at least one layer"),
                                          (((2, 0), 12), "at least one layer"),
                                          (((2,), 0), "growth rate"),
                                          (((2,), 12, 24, 0.0), "compression")])
def test_bad_settings_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        dense_layout(*args)
