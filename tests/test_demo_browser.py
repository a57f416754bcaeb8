"""The demo page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`) via Selenium.

The app (`keras_attn_zoo.demo.build_demo`) runs in this process on 127.0.0.1 with two bundled
presets (Bahdanau and the no-attention baseline) and a tiny untrained captioner checkpoint; the
tests type into the page, click, and compare what the page shows with what the same model objects
return from `predict_texts` / `predict_images`. Screenshots of each tab go to
$ATTN_ZOO_SCREENSHOTS (default: the test's temporary folder).

Skipped, with the reason, when gradio or selenium is not installed or no chromium/chromedriver is
found (`.ci/run` installs them where it can).
"""

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the demo needs gradio: pip install 'keras-attn-zoo[demo]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium: pip install selenium")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from keras_attn_zoo.demo import build_demo, merge_attention, pick_examples, example_items, word_groups  # noqa: E402

from conftest import tiny_captioner_checkpoint  # noqa: E402

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
SENTENCE = "In the beginning God created the heavens and the earth."
WAIT = 180  # seconds for one request on a busy 2-core machine (a bound for hangs, not a timing test)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason=f"no browser for the page test: chromium={CHROMIUM}, chromedriver={CHROMEDRIVER} "
    "(Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    return tiny_captioner_checkpoint(tmp_path_factory.mktemp("demo") / "tiny_captioner")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / "photo.png")
    (folder / "notes.png").write_text("This is a text file with a .png name\n")
    Image.new("1", (8000, 7000)).save(folder / "huge.png")  # 56 million pixels, a few KB on disk
    return folder


@pytest.fixture(scope="module")
def app(captioner):
    import keras_attn_zoo

    models = {name: keras_attn_zoo.from_pretrained(name) for name in ("bible_en_es_bahdanau", "bible_en_es_seq2seq")}
    models["captioner"] = keras_attn_zoo.from_pretrained(str(captioner))
    demo = build_demo(["bible_en_es_bahdanau", "bible_en_es_seq2seq", str(captioner)])
    # The page's models are the ones it loaded: compare against those very objects.
    by_name = {name: model for name, _, model in demo.zoo_models}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "models": by_name}
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as error:  # a driver that does not match the browser, no display libraries, ...
        pytest.skip(f"chromium did not start under chromedriver: {str(error).splitlines()[0]}")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("ATTN_ZOO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------------------------
# Driving the page.


def open_tab(driver, url, tab_name):
    if not driver.current_url.startswith(url):
        driver.get(url)
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.XPATH, f"//button[@role='tab' and contains(., '{tab_name}')]"))
    driver.find_element(By.XPATH, f"//button[@role='tab' and contains(., '{tab_name}')]").click()


def set_text(driver, element_id, text):
    """Fill a Gradio textbox the way typing does (an input event), without typing 100,000 keys."""
    box = driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea")
    driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", box, text
    )


def value_of(driver, element_id):
    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea").get_property("value")


def text_of(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def run_and_wait(driver, slug, shows):
    """Click Run and wait until the page's (output, message) changed and `shows(output, message)`; returns them."""
    before = (value_of(driver, f"{slug}-output"), text_of(driver, f"{slug}-message"))
    driver.find_element(By.ID, f"{slug}-run").click()

    def done(d):
        now = (value_of(d, f"{slug}-output"), text_of(d, f"{slug}-message"))
        return now if now != before and shows(*now) else False

    return WebDriverWait(driver, WAIT).until(done)


def upload(driver, slug, path):
    """Put `path` into the image input of tab `slug`, first clearing the file shown there, if any."""
    clear = driver.find_elements(By.CSS_SELECTOR, f"#{slug}-input button[aria-label='Clear']")
    if clear:
        clear[0].click()
    WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{slug}-input input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, f"#{slug}-input input[type=file]").send_keys(str(path))
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{slug}-input td.filename[aria-label='{Path(path).name}']")
    )


def wait_drawn(driver, slug, shape):
    """The answer is shown first and the heatmap drawn right after: wait until it has `shape`."""
    WebDriverWait(driver, WAIT).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{slug}-heatmap .attn-zoo-heatmap table")
        and heatmap_weights(d, slug).shape == shape
    )


def heatmap_weights(driver, slug):
    table = driver.find_element(By.CSS_SELECTOR, f"#{slug}-heatmap .attn-zoo-heatmap table")
    rows = table.find_elements(By.TAG_NAME, "tr")[1:]
    return np.array([[float(td.get_attribute("data-weight")) for td in row.find_elements(By.TAG_NAME, "td")] for row in rows])


# --------------------------------------------------------------------------------------------
# Tests.


def test_a_sentence_shows_exactly_predict_texts_and_its_heatmap(app, browser, shots):
    model = app["models"]["bible_en_es_bahdanau"]
    open_tab(browser, app["url"], "bible_en_es_bahdanau")
    set_text(browser, "bible-en-es-bahdanau-input", SENTENCE)
    output, message = run_and_wait(browser, "bible-en-es-bahdanau", lambda out, msg: out)
    defaults = model.search_options()
    (expected,) = model.predict_texts([SENTENCE], beam_size=defaults["beam_size"], alpha=defaults["alpha"], return_attention=True)
    assert output == expected.text and expected.text
    assert message == ""

    # Words by default: one row per output word, one column per source word, the model's weights.
    weights, out_words, source_words, _ = merge_attention(expected.attention, expected.tokens, expected.source_tokens)
    wait_drawn(browser, "bible-en-es-bahdanau", weights.shape)
    shown = heatmap_weights(browser, "bible-en-es-bahdanau")
    assert shown.shape == (len(out_words), len(source_words)) == weights.shape
    np.testing.assert_allclose(shown, weights, atol=1e-4)
    labels = browser.find_elements(By.CSS_SELECTOR, "#bible-en-es-bahdanau-heatmap th.source")
    assert [label.text.strip() for label in labels] == source_words
    # The weight under the pointer.
    row, column = np.unravel_index(np.argmax(weights[:-1]), weights[:-1].shape)
    cell = browser.find_elements(By.CSS_SELECTOR, "#bible-en-es-bahdanau-heatmap tr")[row + 1].find_elements(By.TAG_NAME, "td")[column]
    ActionChains(browser).move_to_element(cell).perform()
    hover = browser.execute_script("return getComputedStyle(arguments[0], '::after').content;", cell)
    assert f"{out_words[row]} \u2190 {source_words[column]}: {weights[row, column]:.3f}" in hover
    assert cell.size["width"] > 5 and cell.size["height"] > 5  # drawn, not an empty table
    browser.save_screenshot(str(shots / "tab_translation.png"))

    # Pieces: unticking the box redraws the same prediction piece by piece, without running the model.
    browser.find_element(By.CSS_SELECTOR, "#bible-en-es-bahdanau-merge input").click()
    WebDriverWait(browser, WAIT).until(
        lambda d: heatmap_weights(d, "bible-en-es-bahdanau").shape == expected.attention.shape
    )
    np.testing.assert_allclose(heatmap_weights(browser, "bible-en-es-bahdanau"), expected.attention, atol=1e-4)
    browser.find_element(By.CSS_SELECTOR, "#bible-en-es-bahdanau-merge input").click()


def test_the_answer_is_an_api_endpoint_and_the_heatmaps_stay_out_of_the_run_history(app, browser):
    from gradio_client import Client

    model = app["models"]["bible_en_es_bahdanau"]
    open_tab(browser, app["url"], "bible_en_es_bahdanau")
    set_text(browser, "bible-en-es-bahdanau-input", "And God saw the light, that it was good.")
    run_and_wait(browser, "bible-en-es-bahdanau", lambda out, msg: out)
    wait_drawn(browser, "bible-en-es-bahdanau", heatmap_weights(browser, "bible-en-es-bahdanau").shape)
    # Gradio keeps a run history in the browser's localStorage (one entry, rewritten at each run):
    # the answers are in it, the drawing steps' heatmap HTML (hundreds of KB) is not.
    history = browser.execute_script(
        "return Object.keys(localStorage).filter(k => k.includes('run-history')).map(k => localStorage.getItem(k));"
    )
    assert history and "/bible_en_es_bahdanau" in history[0]
    assert not any("attn-zoo-heatmap" in entry for entry in history)

    # The answer is the page's one documented endpoint, named after the tab.
    client = Client(app["url"], verbose=False)
    assert "/bible_en_es_bahdanau" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert not any("draw" in name for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    defaults = model.search_options()
    output, message = client.predict(SENTENCE, defaults["beam_size"], defaults["alpha"], api_name="/bible_en_es_bahdanau")
    assert output == model.predict_texts([SENTENCE], beam_size=defaults["beam_size"], alpha=defaults["alpha"])[0].text
    assert message == ""


def test_examples_come_from_the_test_split(app, browser):
    model = app["models"]["bible_en_es_bahdanau"]
    items, note = example_items("bible_en_es_bahdanau", model, "text")
    open_tab(browser, app["url"], "bible_en_es_bahdanau")
    page = browser.find_element(By.ID, "tab-bible-en-es-bahdanau").text
    if note is not None:  # the Bible data is not on this machine: one line says so
        assert note in page and items == []
        return
    examples = pick_examples(items)
    assert len(examples) == 6 and all(example in items for example in examples)
    assert abs(len(examples[0].split()) - 40) == min(abs(len(item.split()) - 40) for item in items)
    assert examples[0][:40] in page


def test_bad_text_gives_a_message_and_the_page_keeps_serving(app, browser):
    model = app["models"]["bible_en_es_bahdanau"]
    slug = "bible-en-es-bahdanau"
    open_tab(browser, app["url"], "bible_en_es_bahdanau")
    set_text(browser, f"{slug}-input", "   ")
    _, message = run_and_wait(browser, slug, lambda out, msg: "Nothing to run" in msg)
    assert "enter a text" in message
    WebDriverWait(browser, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#{slug}-heatmap table") == [])
    set_text(browser, f"{slug}-input", "word " * 20_000)  # 100,000 characters
    output, message = run_and_wait(browser, slug, lambda out, msg: "characters" in msg)
    assert "100,000 characters" in message and output == ""
    sentence = "God said, let there be light."
    set_text(browser, f"{slug}-input", sentence)
    output, message = run_and_wait(browser, slug, lambda out, msg: out)
    defaults = model.search_options()
    assert output == model.predict_texts([sentence], beam_size=defaults["beam_size"], alpha=defaults["alpha"])[0].text
    assert message == ""


def test_side_by_side_runs_one_input_through_two_models(app, browser, shots):
    open_tab(browser, app["url"], "Side by side (text)")
    left = browser.find_element(By.CSS_SELECTOR, "#compare-text-left-model input").get_property("value")
    right = browser.find_element(By.CSS_SELECTOR, "#compare-text-right-model input").get_property("value")
    assert (left, right) == ("bible_en_es_bahdanau", "bible_en_es_seq2seq")  # attention against none
    verse = (
        "Then Naomi her mother-in-law said to her, My daughter, shall I not seek rest for you, that it may be well "
        "with you? Now isn't Boaz our kinsman, with whose maidens you were? Behold, he winnows barley tonight."
    )
    set_text(browser, "compare-text-input", verse)
    browser.find_element(By.ID, "compare-text-run").click()
    WebDriverWait(browser, WAIT).until(
        lambda d: value_of(d, "compare-text-left-output") and value_of(d, "compare-text-right-output")
    )
    for side, name in (("left", left), ("right", right)):
        model = app["models"][name]
        options = app["models"][left].search_options()
        expected = model.predict_texts([verse], beam_size=options["beam_size"], alpha=options["alpha"])[0].text
        assert value_of(browser, f"compare-text-{side}-output") == expected
    WebDriverWait(browser, WAIT).until(lambda d: "one context vector" in text_of(d, "compare-text-right-heatmap"))
    assert len(heatmap_weights(browser, "compare-text-left")) >= 1  # Bahdanau: a heatmap
    # The baseline has no attention to draw: the page says why instead of an all-zero map.
    assert browser.find_elements(By.CSS_SELECTOR, "#compare-text-right-heatmap table") == []
    browser.save_screenshot(str(shots / "tab_side_by_side.png"))


def test_an_image_shows_exactly_predict_images_and_each_words_map(app, browser, images, shots):
    from keras_attn_zoo.demo import image_word_maps

    model = app["models"]["tiny_captioner"]
    slug = "tiny-captioner"
    open_tab(browser, app["url"], "tiny_captioner")
    assert "No examples: no recipe file names this model's test data." in browser.find_element(By.ID, f"tab-{slug}").text
    upload(browser, slug, images / "photo.png")
    output, message = run_and_wait(browser, slug, lambda out, msg: out)
    defaults = model.search_options()
    (expected,) = model.predict_images([str(images / "photo.png")], beam_size=defaults["beam_size"], alpha=defaults["alpha"],
                                       return_attention=True)
    assert output == expected.text
    # An untrained captioner runs to its length limit: the page says the caption is cut.
    assert ("stopped at its length limit" in message) == expected.truncated_output
    words, maps = image_word_maps(expected, str(images / "photo.png"))
    # The answer is shown first, the word list and maps drawn right after it.
    WebDriverWait(browser, WAIT).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"#{slug}-word label")) == len(words))
    choices = browser.find_elements(By.CSS_SELECTOR, f"#{slug}-word label")
    assert [choice.text for choice in choices] == [f"{i + 1}. {word}" for i, word in enumerate(words)]
    first = WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.CSS_SELECTOR, f"#{slug}-map img").get_attribute("src"))
    if len(words) > 1:
        choices[1].click()
        WebDriverWait(browser, WAIT).until(
            lambda d: d.find_element(By.CSS_SELECTOR, f"#{slug}-map img").get_attribute("src") != first
        )
    browser.save_screenshot(str(shots / "tab_captioning.png"))


def test_bad_images_give_a_message_and_the_page_keeps_serving(app, browser, images):
    model = app["models"]["tiny_captioner"]
    slug = "tiny-captioner"
    open_tab(browser, app["url"], "tiny_captioner")
    for name, expected in (("notes.png", "not an image"), ("huge.png", "max_pixels")):
        upload(browser, slug, images / name)
        _, message = run_and_wait(browser, slug, lambda out, msg, expected=expected: expected in msg)
        assert message.startswith("error:") and name in message
        assert value_of(browser, f"{slug}-output") == ""
    upload(browser, slug, images / "photo.png")
    output, message = run_and_wait(browser, slug, lambda out, msg: out)
    assert output == model.predict_images([str(images / "photo.png")])[0].text and not message.startswith("error")


def test_word_groups_merge_pieces_and_keep_the_end_alone():
    assert word_groups(["\u2581In", "\u2581the", "\u2581begin", "ning", ",", "</s>"]) == [
        ("In", [0]), ("the", [1]), ("beginning,", [2, 3, 4]), ("</s>", [5])
    ]
