import sys
from pathlib import Path

# The test helpers (reference_data.py) sit beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
