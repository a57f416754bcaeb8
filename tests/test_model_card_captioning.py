"""Model cards of captioning presets: image-to-text, Xu et al., the caption metrics, image usage."""

import yaml

from keras_attn_zoo import model_card, presets

MEASURED = {
    "split": "test", "test_examples": 2000, "bleu1_greedy": 80.5, "bleu4_greedy": 51.25, "cider_greedy": 320.1,
    "bleu1_beam3": 81.0, "bleu4_beam3": 52.5, "meteor_beam3": 40.12, "rougeL_beam3": 75.5, "cider_beam3": 330.25,
    "exact_match_beam3": 35.5, "localisation_beam3": 61.25,
}


def front_matter(card):
    head, _, body = card[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_captioning_card_with_measured_scores():
    preset = dict(presets.get_preset("fashion_scenes_captioner"), metrics=MEASURED)
    meta, body = front_matter(model_card.render_card(preset))
    assert meta["pipeline_tag"] == "image-to-text" and "language" not in meta
    assert meta["tags"][-2:] == ["image-captioning", "show-attend-tell"]
    (result,) = meta["model-index"][0]["results"]
    by_name = {m["name"]: m["value"] for m in result["metrics"]}
    assert by_name["CIDEr (test, beam search, beam 3)"] == 330.25
    assert by_name["METEOR (test, beam search, beam 3)"] == 40.12
    assert by_name["BLEU-4 (test, greedy)"] == 51.25
    assert by_name["localisation % (test, beam search, beam 3)"] == 61.25
    assert len(by_name) == 10  # exactly the scores of the table
    assert result["task"]["type"] == "image-to-text"
    assert "**Paper:** Xu, Ba, Kiros" in body and "Show, Attend and Tell" in body
    assert "| Decoding | BLEU-1 | BLEU-4 | METEOR | ROUGE-L | CIDEr | exact % | localisation % |" in body
    assert "| beam search, beam 3 | 81.00 | 52.50 | 40.12 | 75.50 | 330.25 | 35.50 | 61.25 |" in body
    assert "(2,000 examples), 0-100 (CIDEr x 100)" in body
    assert "localisation_beam3" not in body  # in the table, not among "other measurements"
    assert "![Attention of fashion_scenes_captioner" in body and "(figures/attention_fashion_scenes_captioner.png)" in body
    assert 'attn-zoo predict fashion_scenes_captioner "scene.png"' in body
    assert 'model.predict_images(["scene.png"], beam_size=5)' in body
    assert "attn-zoo evaluate fashion_scenes_captioner --split test --beam 3\n" in body
    assert "## Training data\n\nFashion-MNIST scenes" in body and "## Limitations" in body


def test_unmeasured_captioning_card_and_text_cards_keep_their_usage():
    preset = {key: value for key, value in presets.get_preset("icon_captioner").items() if key != "metrics"}
    meta, body = front_matter(model_card.render_card(preset))
    assert "Not measured yet" in body and "model-index" not in meta and "![" not in body
    assert "frozen ImageNet weights" in body and "Noto emoji (CLDR short names) and openclipart titles" in body
    _, text = front_matter(model_card.preset_card("debian_summarizer_pointer"))
    assert "model.predict_texts([" in text and "predict_images" not in text
