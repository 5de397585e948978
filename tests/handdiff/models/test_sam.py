"""SAM by architecture name (handdiff.models.sam): what segment-anything's own registry builds,
and a checkpoint that is not the architecture's is refused with its name."""

from __future__ import annotations

import pytest
import torch

from handdiff.models.sam import SAM_ARCHITECTURES, build_sam


def test_vit_b_is_segment_anythings_own_model_layer_for_layer():
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    ours = build_sam("vit_b")
    torch.manual_seed(0)
    theirs = sam_model_registry["vit_b"]().eval()
    assert repr(ours) == repr(theirs)  # every layer with its sizes, norms and options
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(reference) and all(torch.equal(mine[k], reference[k]) for k in mine)  # same layers built in the same order


@pytest.mark.parametrize("arch", ["vit_h", "vit_l", "vit_b"])
def test_each_architecture_has_the_registry_s_dimensions(arch, monkeypatch):
    import importlib

    registry = importlib.import_module("segment_anything.build_sam")  # the package's build_sam is the function

    asked = {}
    monkeypatch.setattr(registry, "_build_sam", lambda **kwargs: asked.update(kwargs))
    registry.sam_model_registry[arch]()
    spec = SAM_ARCHITECTURES[arch]
    assert (spec.encoder_embed_dim, spec.encoder_depth, spec.encoder_num_heads) == (
        asked["encoder_embed_dim"],
        asked["encoder_depth"],
        asked["encoder_num_heads"],
    )
    assert list(spec.encoder_global_attn_indexes) == asked["encoder_global_attn_indexes"]
    assert (spec.prompt_embed_dim, spec.image_size) == (256, 1024)  # _build_sam's fixed values


def test_a_checkpoint_loads_into_its_architecture_and_no_other(tmp_path):
    torch.manual_seed(1)
    tiny = build_sam("tiny")
    checkpoint = tmp_path / "sam_tiny.pth"
    torch.save(tiny.state_dict(), checkpoint)
    loaded = build_sam("tiny", str(checkpoint))
    assert not loaded.training and all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), tiny.state_dict().values()))
    assert loaded.image_encoder.img_size == 256
    with pytest.raises(ValueError, match=r"sam_tiny\.pth does not hold a SAM vit_b checkpoint"):
        build_sam("vit_b", str(checkpoint))
    with pytest.raises(ValueError, match="unknown SAM architecture 'vit_s'; known: vit_h, vit_l, vit_b, tiny"):
        build_sam("vit_s")
