"""False-alarm rate of the anomaly watches over the whole demo history, over several seeds (not a speed bench).

For each seed: a demo warehouse at the given scale; every watch over time of parameters/alerts.yaml run over
the whole history (causal: each month judged only on what came before it); anomalies counted on every
checked point except the planted region-month (crmlib.sources.demo TRUTH["anomaly"]), and whether the
planted month itself was found. Also the peer watch per quarter (planted SLA cell found / others flagged).

    .venv/bin/python bench/bench_alerts.py --scale 1 --seeds 1 2 3 4 5 7 42
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import polars as pl

import crmlib
from crmlib.alerts import load_rules
from crmlib.alerts.evaluate import watch_history
from crmlib.kpis import default_catalog
from crmlib.sources import demo
from crmlib.sources.demo import TRUTH

ROOT = Path(__file__).resolve().parents[1]


def quarter_ends(first: dt.date, last: dt.date):
    y, q = first.year, (first.month - 1) // 3
    while True:
        end = dt.date(y + (q == 3), (3 * (q + 1)) % 12 + 1, 1) - dt.timedelta(days=1)
        if end > last:
            return
        yield end
        y, q = (y + 1, 0) if q == 3 else (y, q + 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 7, 42])
    args = ap.parse_args()
    cat = default_catalog()
    watches = load_rules(ROOT / "parameters" / "alerts.yaml").watches
    truth = TRUTH["anomaly"]
    planted = (truth["kpi"], truth["region"], dt.date.fromisoformat(truth["month"] + "-01"))
    sla = (TRUTH["sla"]["team_id"], TRUTH["sla"]["priority"])
    as_of = dt.date.fromisoformat(TRUTH["as_of"])
    tot_checked = tot_false = 0
    print(f"scale {args.scale:g}; watches: {', '.join(w.name for w in watches)}")
    print(
        "| seed | checked points | false alarms | rate | per watch | planted month found | SLA cell found "
        "(quarters) | other cells flagged |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "crm.duckdb"
            demo.write_demo(path, scale=args.scale, seed=seed, progress=False)
            with crmlib.open(path) as crm:
                checked = false = 0
                found = False
                per = []
                sla_found = sla_q = other = 0
                for w in watches:
                    if w.peers:
                        for end in quarter_ends(dt.date.fromisoformat(TRUTH["start"]), as_of):
                            h = watch_history(crm, w, end, cat).filter(pl.col("is_anomaly"))
                            cells = h.select(*w.across).rows()
                            sla_q += 1
                            sla_found += sla in cells
                            other += sum(c != sla for c in cells)
                        continue
                    h = watch_history(crm, w, as_of, cat).filter(pl.col("status").is_in(["ok", "anomaly"]))
                    n_false = 0
                    for r in h.iter_rows(named=True):
                        if (w.kpi, r.get("region"), r["period"]) == planted:
                            found = r["is_anomaly"]
                            continue
                        checked += 1
                        n_false += r["is_anomaly"]
                    false += n_false
                    per.append(f"{w.kpi} {n_false}")
        tot_checked += checked
        tot_false += false
        print(
            f"| {seed} | {checked} | {false} | {false / checked:.2%} | {', '.join(per)} | {found} | "
            f"{sla_found}/{sla_q} | {other} |"
        )
    print(
        f"\nall seeds: {tot_false} false alarms in {tot_checked} checked points = {tot_false / tot_checked:.2%}"
    )


if __name__ == "__main__":
    main()
