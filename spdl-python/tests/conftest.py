import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def image_manifest():
    return json.loads((FIXTURES / "images" / "manifest.json").read_text())
