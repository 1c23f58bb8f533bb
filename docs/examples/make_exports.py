"""Write four small review exports of the kinds users bring, for the README's "Bring your own data".

    python docs/examples/make_exports.py /tmp/exports

- clothing_no_time.csv   an export without any timestamp column (and some empty titles)
- scraped_repeats.csv    a scraper's export: 50 reviews written twice, one id reused for another review
- taobao_gbk.csv         a Chinese export in GBK with Chinese column names
- unquoted_commas.csv    every text has an unquoted comma: pandas would shift every column left
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

EN = [
    "Soft fabric and true to size.",
    "Runs small, order one size up.",
    "Lovely colour, washes well.",
    "The zipper broke after two wears.",
    "Comfortable for long days at work.",
]
ZH = [
    "快递太慢了，等了一个星期，包装也破了。",
    "味道很好，价格实惠，会回购。",
    "质量一般，和描述不太一样。",
    "客服态度很好，问题很快解决了。",
    "非常满意，强烈推荐给大家！",
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "clothing_no_time.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Clothing ID", "Title", "Review Text", "Rating"])
        for i in range(200):
            w.writerow([1000 + i % 17, "Nice" if i % 3 else "", f"{EN[i % 5]} ({i})", 1 + (i * 7) % 5])
    rows = [[f"R{i}", f"B0{i % 11}", f"{EN[i % 5]} #{i}", 1 + i % 5, f"2024-05-{1 + i % 28:02d}"] for i in range(150)]
    rows += [rows[i] for i in range(0, 150, 3)]
    rows += [["R7", "B07", "A different review reusing id R7", 2, "2024-05-09"]]
    with (out / "scraped_repeats.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "asin", "body", "stars", "date"])
        w.writerows(rows)
    with (out / "taobao_gbk.csv").open("w", newline="", encoding="gbk") as f:
        w = csv.writer(f)
        w.writerow(["评论编号", "商品编号", "评论内容", "评分", "评论时间"])
        for i in range(100):
            w.writerow(
                [
                    f"T{i}",
                    f"SKU{i % 6}",
                    f"{ZH[i % 5]}（{i}）",
                    [1, 5, 3, 4, 5][i % 5],
                    f"2024-03-{1 + i % 28:02d} 12:00",
                ]
            )
    with (out / "unquoted_commas.csv").open("w", encoding="utf-8") as f:
        f.write("review_id,product_id,text,rating\n")
        f.writelines(f"U{i},P{i % 4},{EN[i % 5].replace('.', ', really.')},{1 + i % 5}\n" for i in range(40))
    print(f"wrote 4 exports to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "exports"))
