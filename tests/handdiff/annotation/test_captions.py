from __future__ import annotations

import numpy as np
import pytest

from handdiff.annotation.captions import DEFAULT_INSTRUCTION, CaptionTable, LlavaCaptioner
from handdiff.assets.tiny_zoo import model_locations
from handdiff.models.loading import load_captioner


def test_caption_tables_from_csv_and_json(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("sequence,caption\n0001_a,  a right hand \n0002_b,two hands\n")
    table = CaptionTable(str(csv))
    assert table("0001_a") == "a right hand" and table("nope") is None and table(None) is None
    js = tmp_path / "c.json"
    js.write_text('{"cap1": "hands of a man"}')
    assert CaptionTable(str(js))("cap1") == "hands of a man"


def test_malformed_caption_tables_name_the_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("seq,text\n1,x\n")
    with pytest.raises(ValueError, match="expected CSV columns 'sequence' and 'caption'"):
        CaptionTable(str(bad))
    listing = tmp_path / "bad.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        CaptionTable(str(listing))


def test_llava_captions_one_string_per_image_in_the_llava_format(tiny_zoo):
    model, processor = load_captioner(model_locations(tiny_zoo)["captioner"])
    captioner = LlavaCaptioner(model, processor, max_new_tokens=6)
    assert captioner.prompt == f"USER: <image>\n{DEFAULT_INSTRUCTION} ASSISTANT:"
    images = [np.zeros((40, 60, 3), np.uint8), np.full((90, 30, 3), 200, np.uint8), np.zeros((56, 56, 3), np.uint8)]
    captions = captioner(images)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert captioner([]) == []
