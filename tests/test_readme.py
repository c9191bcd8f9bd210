"""The README's examples are real: its mapping file loads, its commands exist."""

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_mapping_example_loads(tmp_path):
    from crmlib.importer import load_mapping

    block = re.search(r"```yaml\n(table: opportunities\n.*?)```", README, re.S).group(1)
    path = tmp_path / "mapping.yaml"
    path.write_text(block, encoding="utf-8")
    m = load_mapping(path)
    assert m.table == "opportunities"


def test_readme_commands_exist():
    commands = set(re.findall(r"\.venv/bin/crmlib ((?:data|kpis|report|alerts) \w+)", README))
    assert {"data demo", "data info", "data validate", "data import", "data export", "kpis list"} <= commands
    for cmd in sorted(commands):
        r = subprocess.run([sys.executable, "-m", "crmlib", *cmd.split(), "--help"], capture_output=True, text=True)
        assert r.returncode == 0, f"README mentions `crmlib {cmd}`, which does not exist: {r.stderr}"
